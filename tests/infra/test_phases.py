"""The run's phase clock: phases in the order they ran, re-entered phases add up, and the
judge's seconds carved out of prepare's."""

import time

from farm.infra.phases import PhaseClock, format_phases, phase_use


def test_phases_keep_their_order_and_add_up_when_entered_again(monkeypatch):
    now = iter([0.0, 2.0, 2.0, 7.5, 10.0, 11.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(now))
    clock = PhaseClock()
    for name in ("prepare", "trials", "prepare"):
        with clock.phase(name):
            pass
    assert clock.as_dict() == {"prepare": 3.0, "trials": 5.5}


def test_a_phase_that_fails_is_still_timed(monkeypatch):
    now = iter([1.0, 4.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(now))
    clock = PhaseClock()
    try:
        with clock.phase("evaluator"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert clock.as_dict() == {"evaluator": 3.0}


def test_carving_moves_seconds_into_a_phase_right_after_the_whole():
    clock = PhaseClock()
    clock.add("prepare", 50.0)
    clock.add("trials", 100.0)
    clock.carve("prepare", "judge", 30.0)
    assert list(clock.as_dict().items()) == [("prepare", 20.0), ("judge", 30.0), ("trials", 100.0)]
    clock.carve("trials", "nothing", 0.0)
    clock.carve("missing", "judge", 5.0)
    assert "nothing" not in clock.as_dict() and clock.as_dict()["judge"] == 30.0


def test_the_line_gives_seconds_and_shares():
    assert format_phases({"trials": 75.0, "evaluator": 25.0}) == \
        "trials 75 s (75%) · evaluator 25 s (25%)"
    assert format_phases(None) == "" and format_phases({}) == ""


def test_busy_shares_of_the_trials_cores_and_the_evaluators_classifiers():
    """Two 1-CPU trials of 30 s and one 2-CPU trial of 10 s in a 50 s phase on 2 cores keep
    them 80% busy; classifiers that trained 90 s of a 100 s evaluator keep it 90% busy."""
    seconds = {"prepare": 5.0, "trials": 50.0, "evaluator": 100.0}
    use = phase_use(seconds, [(30.0, 1.0), (30.0, 1.0), (10.0, 2.0)], 2.0, 90.0)
    assert use == {"trials": {"work_seconds": 80.0, "cores": 2.0, "busy": 0.8},
                   "evaluator": {"work_seconds": 90.0, "busy": 0.9}}
    assert format_phases(seconds, use) == ("prepare 5 s (3%) · trials 50 s (32%, cores 80% busy)"
                                           " · evaluator 100 s (65%, classifiers 90% of it)")
    # nothing known, nothing said: no trials (a resumed run), no evaluator, no cores
    assert phase_use(seconds, [], 2.0, 0.0) == {}
    assert phase_use(seconds, [(30.0, 1.0)], 0.0, 0.0) == {}
