"""The run's phase clock: phases in the order they ran, re-entered phases add up, and the
judge's seconds carved out of prepare's."""

import time

from farm.infra.phases import PhaseClock, format_phases


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
