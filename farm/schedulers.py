"""Stopping hopeless trials early: ASHA within groups of trials that are comparable.

A family's trials grow different datasets, and a per-class family grows a different class in
each trial; a KID of 0.3 on kiwis says nothing about a KID of 0.3 on bananas. So the farm runs
one ASHA (asynchronous successive halving, Li et al. 2018) per (dataset, class) group, on a
smoothed copy of the selection metric (GAN metrics jump from one evaluation to the next, and
warm-up is noisy, so a grace period of epochs passes before any trial may be stopped). Stopping
only ends training: the epoch a trial keeps is still its best raw-metric checkpoint.
"""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

SMOOTHED = "select/smoothed"  # what the trainable reports when a family has a scheduler


class GroupedASHA(FIFOScheduler):
    """One ASHAScheduler per (dataset, class) of the trials it sees."""

    def __init__(self, mode: str, max_t: int, grace_period: int, reduction_factor: float):
        super().__init__()
        self._args = dict(time_attr="epoch", metric=SMOOTHED, mode=mode, max_t=max_t,
                          grace_period=grace_period, reduction_factor=reduction_factor)
        self._groups: dict[tuple, ASHAScheduler] = {}

    def group_of(self, trial) -> ASHAScheduler:
        spec = trial.config["trial"]
        key = (spec["dataset"], spec.get("class"))
        if key not in self._groups:
            self._groups[key] = ASHAScheduler(**self._args)
        return self._groups[key]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are this scheduler's own (the smoothed select metric)

    def on_trial_add(self, tune_controller, trial):
        self.group_of(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        return self.group_of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self.group_of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self.group_of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"GroupedASHA: {len(self._groups)} group(s) of comparable trials"


def scheduler_for(settings: dict | None, mode: str, epochs: int):
    """The Tune scheduler a family's `scheduler:` section asks for (None: run every epoch)."""
    if not settings:
        return None
    return GroupedASHA(mode=mode, max_t=epochs, grace_period=int(settings["grace_period"]),
                       reduction_factor=float(settings.get("reduction_factor", 3)))


def smoothed(history: list[float], window: int) -> float:
    """Mean of the last `window` values of the selection metric."""
    recent = history[-window:]
    return sum(recent) / len(recent)
