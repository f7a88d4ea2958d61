"""Growing the planned trials with Ray Tune, all families in one experiment, and reading back
each trial's best epoch."""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from farm.infra.errors import FarmError
from farm.infra.storage import Store, remove
from farm.tune.progress_table import BestSoFar, FarmReporter
from farm.tune.gang import gang_up, is_gang, member_name, member_outcomes
from farm.tune.ray_internals import JsonResults
from farm.tune.schedulers import RANK, SMOOTHED, GroupedScheduler, checkpoint_exists, rank
from farm.tune.trainable import train_gan


def trial_resources(resources: dict, use_gpu: bool) -> dict:
    """A trial asking for a GPU on a cluster without one would wait forever: drop the GPU."""
    out = {"cpu": float(resources.get("cpu", 1))}
    if use_gpu and resources.get("gpu", 0):
        out["gpu"] = float(resources["gpu"])
    return out


def _resources_of(use_gpu: bool):
    """Each trial's own share, read from its planned spec (families ask for different ones)."""
    def resources(config: dict) -> tune.PlacementGroupFactory:
        share = trial_resources(config["trial"]["resources"], use_gpu)
        return tune.PlacementGroupFactory([{k.upper(): v for k, v in share.items()}])
    return resources


@dataclass
class TrialOutcome:
    """What the driver needs from one finished trial."""

    spec: dict
    trial_id: str
    path: str
    error: str | None
    best_epoch: int | None
    best_metrics: dict
    checkpoint_path: str | None
    last_epoch: int | None = None  # below the planned epochs when a scheduler stopped it early
    train_seconds: float | None = None  # Tune's time_total_s: training and evaluations


TUNE_DIR = "tune"  # <experiment>/tune/<trial>/: Tune's state and one folder per trial

# What Ray adds to every report; the rest is what the family measured.
RAY_KEYS = {"timestamp", "checkpoint_dir_name", "should_checkpoint", "done", "training_iteration",
            "trial_id", "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
            "config", "time_since_restore", "iterations_since_restore", "epoch", SMOOTHED,
            RANK}


def _trial_name(trial) -> str:
    return member_name(trial.config["trial"])


# Tune's saved state (tuner.pkl, experiment_state-*.json) pickles the scheduler, the callbacks
# and the trial name function by module path. An experiment started before farm/ was laid out
# in folders (issue 19) names them by their old paths; resuming one finds them under both.
OLD_MODULE_PATHS = {"farm.tuning": "farm.tune.runner", "farm.schedulers": "farm.tune.schedulers",
                    "farm.ray_internals": "farm.tune.ray_internals",
                    "farm.progress_table": "farm.tune.progress_table"}


def answer_old_module_paths() -> None:
    """Let an older experiment's pickled state import what it names (in this process only)."""
    for old, new in OLD_MODULE_PATHS.items():
        sys.modules.setdefault(old, importlib.import_module(new))


def run_trials(trials: list[dict], datasets: dict, store: Store, use_gpu: bool,
               resume: bool = False, quiet: bool = True) -> list[TrialOutcome]:
    """One Tuner for every planned trial, whatever its family, so that a free CPU or GPU share
    goes to the next waiting trial instead of idling until a family's last trial ends.

    With `resume`, the experiment Tune already started is restored: finished trials are read
    back, unfinished and errored ones continue from their latest checkpoint. `quiet` (not
    `--debug`): the farm's progress table (farm.tune.progress_table) instead of Tune's output."""
    if quiet:  # Tune's new output engine takes no reporter: the classic one does
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        logging.getLogger("ray.tune").setLevel(logging.WARNING)  # its INFO lines: state written
    best = BestSoFar()
    shown = {"callbacks": [JsonResults(), best],  # JsonResults instead of Tune's JsonLogger
             "progress_reporter": FarmReporter(best)} if quiet else \
        {"callbacks": [JsonResults()]}
    trainable = tune.with_resources(tune.with_parameters(train_gan, datasets=datasets),
                                    _resources_of(use_gpu))
    path = store.location(TUNE_DIR)
    if resume and tune.Tuner.can_restore(path):
        print(f"Resuming the trials in {path}")
        answer_old_module_paths()
        grid = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  resume_errored=True).fit()
        return [o for result in finished(grid) for o in _outcomes(result, store)]
    remove(path)  # started but never saved its state: start afresh
    tuner = tune.Tuner(
        trainable,
        # trials of a family with `gang:` grow in stacked gangs (farm.tune.gang)
        param_space={"trial": tune.grid_search(gang_up(trials))},
        tune_config=tune.TuneConfig(trial_name_creator=_trial_name,
                                    trial_dirname_creator=_trial_name,
                                    # groups the families with a `scheduler:`, runs
                                    # the others every epoch
                                    scheduler=GroupedScheduler(),
                                    # a trial's process goes on to the next trial of the same
                                    # shape: no fresh interpreter and torch import per trial
                                    reuse_actors=True),
        run_config=tune.RunConfig(
            name=TUNE_DIR,
            storage_path=store.location(),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=max(t["keep_checkpoints"] for t in trials),
                checkpoint_score_attribute=RANK,
                checkpoint_score_order="min"),
            failure_config=tune.FailureConfig(max_failures=2),
            # the pictures a trial writes into its trial dir reach storage at each checkpoint,
            # from any node and from a reused process (whose trial dir is a working copy)
            sync_config=tune.SyncConfig(sync_artifacts=True),
            verbose=1,
            **shown,
        ),
    )
    grid = tuner.fit()
    return [o for result in finished(grid) for o in _outcomes(result, store)]


def finished(grid):
    """The grid, once every trial has ended: done, stopped early by its scheduler, or failed.
    Tune returns from an interrupted run (Ctrl-C) as from a finished one, with every trial
    TERMINATED, even those that never started; the farm would then export and score half-grown
    trials as if they were done. What tells them apart is Tune's `done` metric, true in the last
    result of a trial that returned or that its scheduler stopped, or (after a killed driver,
    whose saved state can predate that last result) the trial's planned last epoch reached."""
    def ended(result) -> bool:
        metrics, planned = result.metrics or {}, (result.config or {}).get("trial", {})
        return result.error is not None or bool(metrics.get("done")) or \
            metrics.get("epoch", 0) >= planned.get("epochs", float("inf"))  # never started: {}

    unfinished = sum(1 for result in grid if not ended(result))
    if unfinished:
        raise FarmError(f"interrupted with {unfinished} of {len(grid)} trials unfinished; Tune "
                        "saved their state: go on with --resume --name <this experiment>")
    return grid


def best_kept(checkpoints: list, metric: str, mode: str) -> tuple:
    """(checkpoint, its metrics) with the best `metric` among Tune's kept checkpoints that still
    exist, or (None, {}): the lowest `select/rank` the trial reported with it (the metric and its
    tie-break, farm.tune.schedulers.select_rank), else the metric itself. After a resume Tune's list
    can name one its retention deleted after the state it was restored from was saved (see
    farm.tune.schedulers.forget_what_is_gone)."""
    def usable(checkpoint, metrics) -> bool:
        value = metrics.get(metric)
        return isinstance(value, (int, float)) and value == value and \
            checkpoint_exists(checkpoint)

    kept = [(c, m) for c, m in checkpoints if usable(c, m)]
    if not kept:
        return None, {}
    return min(kept, key=lambda pair: pair[1].get(RANK, rank(pair[1][metric], mode)))


def _error_text(result) -> str | None:
    return None if result.error is None else f"{type(result.error).__name__}: {result.error}"


def _clean(metrics: dict) -> dict[str, float]:
    """The numbers a family measured, without what Ray adds to every report."""
    return {k: float(v) for k, v in metrics.items()
            if k not in RAY_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _last_epoch(result) -> int | None:
    return int(result.metrics["epoch"]) if "epoch" in (result.metrics or {}) else None


def _outcomes(result, store: Store) -> list[TrialOutcome]:
    """One outcome per trial: a gang's result is each of its members'."""
    spec = result.config["trial"]
    if not is_gang(spec):
        return [_outcome(result, store)]
    path, _ = store.fetch_trial(result.path, result.filesystem, None)
    seconds = (result.metrics or {}).get("time_total_s")
    return [TrialOutcome(
        spec=m["spec"], trial_id=f"{Path(result.path).name}/{member_name(m['spec'])}",
        path=m["path"], error=_error_text(result), best_epoch=m["best_epoch"],
        best_metrics=_clean(m["best_metrics"]), checkpoint_path=m["checkpoint"],
        last_epoch=_last_epoch(result),  # the members trained epoch for epoch together
        # the gang's time shared out: its members trained together
        train_seconds=seconds / len(spec["gang"]) if seconds is not None else None)
        for m in member_outcomes(spec, path)]


def _outcome(result, store: Store) -> TrialOutcome:
    """The trial as the driver reads it: for a remote experiment, its small files and best
    checkpoint fetched into the driver's folder."""
    spec = result.config["trial"]
    metric, mode = spec["select"]["metric"], spec["select"]["mode"]
    best, best_metrics = best_kept(result.best_checkpoints, metric, mode)
    path, checkpoint = store.fetch_trial(result.path, result.filesystem,
                                         best.path if best is not None else None)
    return TrialOutcome(
        spec=spec, trial_id=str(best_metrics.get("trial_id", Path(result.path).name)),
        path=path, error=_error_text(result),
        best_epoch=int(best_metrics["epoch"]) if "epoch" in best_metrics else None,
        best_metrics=_clean(best_metrics), checkpoint_path=checkpoint,
        last_epoch=_last_epoch(result),
        train_seconds=(result.metrics or {}).get("time_total_s"))
