"""ASHA per group of comparable trials, and the smoothed metric it reads."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from farm.schedulers import SMOOTHED, GroupedASHA, scheduler_for, smoothed


def _trial(trial_id, dataset, cls=None, family="fruit-pairs", mode="min", scheduler=None):
    settings = {"grace_period": 10, "reduction_factor": 2} if scheduler is None else scheduler
    return SimpleNamespace(trial_id=trial_id, config={"trial": {
        "family": family, "dataset": dataset, "class": cls, "epochs": 100,
        "select": {"metric": "kid", "mode": mode}, "scheduler": settings}})


def _asha(*trials):
    scheduler = GroupedASHA()
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    return scheduler


def _report(scheduler, trial, epoch, value):
    return scheduler.on_trial_result(None, trial, {"epoch": epoch, SMOOTHED: value})


def test_trials_are_only_compared_within_their_dataset_and_class():
    good, bad = _trial("a1", "fruit", "kiwi"), _trial("a2", "fruit", "kiwi")
    alone = _trial("b1", "fruit", "banana")  # a much worse KID, but the only banana trial
    scheduler = _asha(good, bad, alone)
    assert _report(scheduler, good, 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, bad, 10, 0.5) == TrialScheduler.STOP
    assert _report(scheduler, alone, 10, 0.9) == TrialScheduler.CONTINUE
    assert len(scheduler._groups) == 2


def test_max_mode_keeps_the_higher_score():
    low, high = _trial("l", "credit", mode="max"), _trial("h", "credit", mode="max")
    scheduler = _asha(low, high)
    assert _report(scheduler, high, 10, 0.8) == TrialScheduler.CONTINUE
    assert _report(scheduler, low, 10, 0.2) == TrialScheduler.STOP


def test_before_the_grace_period_nobody_is_stopped():
    a, b = _trial("a", "credit"), _trial("b", "credit")
    scheduler = _asha(a, b)
    assert _report(scheduler, a, 5, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, b, 5, 0.9) == TrialScheduler.CONTINUE


def test_families_without_a_scheduler_run_every_epoch_beside_those_with_one():
    plain = [_trial(f"p{i}", "credit", family="tabular-a", scheduler={}) for i in range(2)]
    asha = [_trial(f"s{i}", "credit", family="tabular-b") for i in range(2)]
    scheduler = _asha(*plain, *asha)
    assert _report(scheduler, plain[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, plain[1], 10, 0.9) == TrialScheduler.CONTINUE  # never stopped
    assert _report(scheduler, asha[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, asha[1], 10, 0.9) == TrialScheduler.STOP
    assert len(scheduler._groups) == 2  # same dataset, different families: not compared


def test_each_group_reads_its_own_grace_period():
    late = [_trial(f"l{i}", "credit", scheduler={"grace_period": 50}) for i in range(2)]
    early = [_trial(f"e{i}", "kiwi") for i in range(2)]
    scheduler = _asha(*late, *early)
    assert _report(scheduler, late[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, late[1], 10, 0.9) == TrialScheduler.CONTINUE  # still in grace
    assert _report(scheduler, early[0], 10, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, early[1], 10, 0.9) == TrialScheduler.STOP


def test_scheduler_for_and_smoothing():
    assert scheduler_for([{"scheduler": {}}, {}]) is None
    assert isinstance(scheduler_for([{"scheduler": {}}, {"scheduler": {"grace_period": 20}}]),
                      GroupedASHA)
    assert smoothed([1.0, 2.0, 3.0, 4.0], 2) == 3.5 and smoothed([1.0], 3) == 1.0
