"""ASHA per group of comparable trials, and the smoothed metric it reads."""

from __future__ import annotations

from types import SimpleNamespace

from ray.tune.schedulers import TrialScheduler

from farm.schedulers import SMOOTHED, GroupedASHA, scheduler_for, smoothed


def _trial(trial_id, dataset, cls=None):
    return SimpleNamespace(trial_id=trial_id,
                           config={"trial": {"dataset": dataset, "class": cls}})


def _asha(*trials, mode="min"):
    scheduler = GroupedASHA(mode=mode, max_t=100, grace_period=10, reduction_factor=2)
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
    low, high = _trial("l", "credit"), _trial("h", "credit")
    scheduler = _asha(low, high, mode="max")
    assert _report(scheduler, high, 10, 0.8) == TrialScheduler.CONTINUE
    assert _report(scheduler, low, 10, 0.2) == TrialScheduler.STOP


def test_before_the_grace_period_nobody_is_stopped():
    a, b = _trial("a", "credit"), _trial("b", "credit")
    scheduler = _asha(a, b)
    assert _report(scheduler, a, 5, 0.1) == TrialScheduler.CONTINUE
    assert _report(scheduler, b, 5, 0.9) == TrialScheduler.CONTINUE


def test_scheduler_for_and_smoothing():
    assert scheduler_for({}, "min", 100) is None
    assert isinstance(scheduler_for({"grace_period": 20}, "min", 100), GroupedASHA)
    assert smoothed([1.0, 2.0, 3.0, 4.0], 2) == 3.5 and smoothed([1.0], 3) == 1.0
