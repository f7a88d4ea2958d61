"""Stopping hopeless trials early: ASHA within groups of trials that are comparable.

A family's trials grow different datasets, a per-class family grows a different class in each
trial, and the farm grows every family in one experiment; a KID of 0.3 on kiwis says nothing
about a KID of 0.3 on bananas. So the farm runs one ASHA (asynchronous successive halving, Li et
al. 2018) per (family, dataset, class) group, on a smoothed copy of the selection metric (GAN
metrics jump from one evaluation to the next, and warm-up is noisy, so a grace period of epochs
passes before any trial may be stopped). Stopping only ends training: the epoch a trial keeps
is still its best raw-metric checkpoint.
"""

from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

SMOOTHED = "select/smoothed"  # what the trainable reports when a family has a scheduler
# The selection metric turned lower-is-better, so that one CheckpointConfig keeps every family's
# best epochs whether its metric is a KID (min) or a score (max).
RANK = "select/rank"


def rank(value: float, mode: str) -> float:
    return float(value) if mode == "min" else -float(value)


class GroupedASHA(FIFOScheduler):
    """One ASHAScheduler per (family, dataset, class) of the trials it sees.

    The whole farm is one Tune experiment, so each group takes its settings (grace period,
    reduction factor, epochs, mode) from its own trials' `scheduler:` and `select:` sections;
    a trial whose family has no `scheduler:` section always runs to its last epoch."""

    def __init__(self):
        super().__init__()
        self._groups: dict[tuple, ASHAScheduler | None] = {}

    def group_of(self, trial) -> ASHAScheduler | None:
        spec = trial.config["trial"]
        key = (spec.get("family"), spec["dataset"], spec.get("class"))
        if key not in self._groups:
            settings = spec.get("scheduler") or {}
            self._groups[key] = ASHAScheduler(
                time_attr="epoch", metric=SMOOTHED,
                mode=spec["select"]["mode"], max_t=int(spec["epochs"]),
                grace_period=int(settings["grace_period"]),
                reduction_factor=float(settings.get("reduction_factor", 3))) if settings else None
        return self._groups[key]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are each group's own (the smoothed select metric)

    def on_trial_add(self, tune_controller, trial):
        if group := self.group_of(trial):
            group.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        group = self.group_of(trial)
        return group.on_trial_result(tune_controller, trial, result) if group else self.CONTINUE

    def on_trial_complete(self, tune_controller, trial, result):
        if group := self.group_of(trial):
            group.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        if group := self.group_of(trial):
            group.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        stopping = sum(g is not None for g in self._groups.values())
        return f"GroupedASHA: {stopping} of {len(self._groups)} group(s) of comparable trials stop early"


def scheduler_for(trials: list[dict]):
    """The farm's scheduler when some family has a `scheduler:` section (None: run every epoch)."""
    return GroupedASHA() if any(t.get("scheduler") for t in trials) else None


def smoothed(history: list[float], window: int) -> float:
    """Mean of the last `window` values of the selection metric."""
    recent = history[-window:]
    return sum(recent) / len(recent)
