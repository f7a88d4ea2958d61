"""Early stopping (ASHA) and population-based training (PBT) within groups of comparable trials.

A family's trials grow different datasets, a per-class family grows a different class in each
trial, and the farm grows every family in one experiment; a KID of 0.3 on kiwis says nothing
about a KID of 0.3 on bananas. So the farm runs one scheduler per (family, dataset, class) group,
on a smoothed copy of the selection metric (GAN metrics jump from one evaluation to the next, and
warm-up is noisy, so a grace period of epochs passes before any trial is stopped or exploited).
Either way the epoch a trial keeps is still its best raw-metric checkpoint.

- `asha` (asynchronous successive halving, Li et al. 2018) stops the group's worst trials.
- `pbt` (Jaderberg et al. 2017) lets a trial in the group's bottom quantile take over the
  weights of one in its top quantile and go on with that trial's settings, perturbed. Only the
  settings named in `mutations` may differ within a group (config.py checks), since weights only
  move between models of one shape.
"""

from __future__ import annotations

import copy
import logging
import math
import posixpath
import random
import re
import warnings
from pathlib import Path

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from farm.tune.ray_internals import PBTHooks, forget_listed, listed_checkpoints, restart_from

SMOOTHED = "select/smoothed"  # what the trainable reports when a family has a scheduler
# The selection metric turned lower-is-better, so that one CheckpointConfig keeps every family's
# best epochs whether its metric is a KID (min) or a score (max).
RANK = "select/rank"
DONOR_DIR = "pbt_donor"  # in an exploiting trial's folder: its copy of the donor's checkpoint
PENDING = "pending_exploit"  # in a paused trial's spec: the exploit it takes when it runs again
logger = logging.getLogger(__name__)

# FarmPBT copies the donor's checkpoint itself, so few kept checkpoints are no risk here.
warnings.filterwarnings("ignore", message=r"Using `CheckpointConfig.num_to_keep <= 2` with PBT")


def rank(value: float, mode: str) -> float:
    return float(value) if mode == "min" else -float(value)


FLOORED = 1e6  # added to the rank of an epoch below a floor: after every epoch above them all


def select_rank(metrics: dict, select: dict) -> float | None:
    """The checkpoint's place in the trial's ranking, lower is better; None without the metric.

    Plain: the selection metric, sign-flipped for `max`. With `tie` (a second metric, `tie_mode`
    min by default) and `tolerance`, values of the first within the same `tolerance` step count
    as equal and the second decides among them: a pair whose usefulness is 0.000 at every
    evaluation (its images never pass for its class yet) then keeps its best-KID epoch instead of
    its first one, before it has learned anything. With `floor` ({metric: minimum}), an epoch
    below a minimum ranks after every epoch that meets them all: a pair is not kept at an epoch
    whose images are one picture (diversity under 0.2) when another epoch's are not."""
    metric, mode = select["metric"], select.get("mode", "max")
    if metric not in metrics:
        return None
    below = any(name in metrics and metrics[name] < minimum
                for name, minimum in (select.get("floor") or {}).items())
    return _ranked(metrics, select, rank(metrics[metric], mode)) + (FLOORED if below else 0.0)


def _ranked(metrics: dict, select: dict, first: float) -> float:
    tie, tolerance = select.get("tie"), select.get("tolerance")
    if not tie or not tolerance or tie not in metrics:
        return first
    second = rank(metrics[tie], select.get("tie_mode", "min"))
    # the step of the first metric (rounded, so that a flat 0.000 to 0.004 is one step), then
    # the second squashed into (0, 1) within it
    return round(first / float(tolerance)) + 0.5 + math.atan(second) / math.pi


def _domain(values):
    """A mutation as written in YAML (a list of choices, {uniform|loguniform: [a, b]}) as Tune's."""
    from ray import tune

    if isinstance(values, dict):
        (name, (low, high)), = values.items()
        return {"uniform": tune.uniform, "loguniform": tune.loguniform}[name](low, high)
    return list(values)


class FarmPBT(PBTHooks):
    """Ray's PBT with four changes the farm needs.

    - The exploit waits until the trial's own report is saved. Ray's PBT pauses a trial in the
      bottom quantile at once, without saving the checkpoint it just reported, and that report
      can be the trial's best epoch: the farm keeps every trial's best raw-metric checkpoint.
      So a bottom trial is paused like any other (its checkpoint saved), and the exploit is
      applied when it is chosen to run again (`exploit_pending`).
    - The decision is written into the trial's spec (`pending_exploit`), which Tune saves with
      the experiment, not kept in this object, which Tune does not save: a driver killed while
      an exploit waits applies it after `--resume`.
    - A trial keeps its identity (index, seed, dataset, class) when it exploits: Ray's PBT would
      copy the donor's whole config, and two trials would then export under one name. It takes
      the donor's settings, perturbed, and records the exploit in its spec (`exploits`).
    - The donor's weights are its latest checkpoint, copied into the exploiting trial's own
      folder at the decision. Ray's PBT points at a checkpoint the donor's own best-K retention
      may delete before the exploiting trial restarts from it."""

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        return self.PAUSE if PENDING in trial.config["trial"] else decision

    def explore_config(self, trial, donor):
        explored, operations = super().explore_config(trial, donor)
        spec = copy.deepcopy(trial.config["trial"])
        spec["params"] = explored["trial"]["params"]
        return {**trial.config, "trial": spec}, operations

    def decide_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        """Decide on an exploit only where epochs are left to train after it: a trial that has
        reported its last epoch is done, and a donor's last-epoch weights would leave nothing to
        train (nor a report to carry the trial's new settings)."""
        epochs = trial.config["trial"]["epochs"]
        if trial not in lower_quantile or self.last_result(trial)["epoch"] >= epochs:
            return
        donors = [t for t in upper_quantile if t.latest_checkpoint_result is not None
                  and t.latest_checkpoint_result.metrics.get("epoch", epochs) < epochs]
        if not donors:
            return
        donor = random.choice(donors)
        latest = donor.latest_checkpoint_result  # weights and the metrics reported with them
        copied = _own_copy(trial, latest.checkpoint)
        explored, _ = self.explore_config(trial, donor)
        spec = copy.deepcopy(trial.config["trial"])
        spec[PENDING] = {"epoch": int(latest.metrics.get("epoch", 0)),
                         "donor": donor.config["trial"]["index"],
                         "params": explored["trial"]["params"], "checkpoint": copied}
        trial.set_config({**trial.config, "trial": spec})

    def exploit_pending(self, trial) -> None:
        """Give a paused trial the donor's weights and settings, perturbed, before it runs."""
        pending = trial.config["trial"].get(PENDING)
        if pending is None:
            return
        from ray.tune import Checkpoint

        spec = copy.deepcopy(trial.config["trial"])
        del spec[PENDING]
        spec["params"] = pending["params"]
        mutated = {k: spec["params"][k] for k in self.mutations()["trial"]["params"]}
        spec["exploits"] = [*spec.get("exploits", []), {
            "epoch": pending["epoch"], "donor": pending["donor"], "params": mutated}]
        trial.set_config({**trial.config, "trial": spec})
        checkpoint = Checkpoint(pending["checkpoint"], filesystem=trial.storage.storage_filesystem)
        restart_from(trial, checkpoint, {"epoch": pending["epoch"]})
        self.record_exploit(trial, pending["epoch"])
        logger.info("PBT: trial %s takes trial #%s's weights at epoch %s, then %s", trial,
                    pending["donor"], pending["epoch"], mutated)


def _own_copy(trial, checkpoint) -> str:
    """A copy of the donor's checkpoint in the trial's own folder (replacing the copy of its
    previous exploit, which it restored from and reported past); its path there."""
    import pyarrow.fs

    filesystem = trial.storage.storage_filesystem
    target = Path(trial.path, DONOR_DIR).as_posix()
    if filesystem.get_file_info(target).type != pyarrow.fs.FileType.NotFound:
        filesystem.delete_dir(target)
    filesystem.create_dir(target)
    pyarrow.fs.copy_files(checkpoint.path, target, source_filesystem=checkpoint.filesystem,
                          destination_filesystem=filesystem)
    return target


def _asha(spec: dict, settings: dict) -> ASHAScheduler:
    return ASHAScheduler(time_attr="epoch", metric=SMOOTHED, mode=spec["select"]["mode"],
                         max_t=int(spec["epochs"]), grace_period=int(settings["grace_period"]),
                         reduction_factor=float(settings.get("reduction_factor", 3)))


def _pbt(spec: dict, settings: dict) -> FarmPBT:
    mutations = {name: _domain(values) for name, values in settings["mutations"].items()}
    return FarmPBT(time_attr="epoch", metric=SMOOTHED, mode=spec["select"]["mode"],
                   perturbation_interval=int(settings["perturbation_interval"]),
                   burn_in_period=int(settings["grace_period"]),
                   hyperparam_mutations={"trial": {"params": mutations}},
                   quantile_fraction=float(settings.get("quantile_fraction", 0.25)),
                   log_config=False)


SCHEDULERS = {"asha": _asha, "pbt": _pbt}  # a family's `scheduler.kind`


class _GroupView:
    """The Tune controller as one group's scheduler should see it: only its own trials (PBT
    pauses a trial for others of its population, not for every waiting trial of the farm)."""

    def __init__(self, controller, members: set):
        self._controller, self._members = controller, members

    def get_trials(self):
        return [t for t in self._controller.get_trials() if t in self._members]

    def get_live_trials(self):
        return [t for t in self._controller.get_live_trials() if t in self._members]

    def __getattr__(self, name):
        return getattr(self._controller, name)


class GroupedScheduler(FIFOScheduler):
    """One ASHA or PBT scheduler per (family, dataset, class) of the trials it sees.

    The whole farm is one Tune experiment, so each group takes its settings (kind, grace period,
    epochs, mode, ...) from its own trials' `scheduler:` and `select:` sections; a trial whose
    family has no `scheduler:` section always runs to its last epoch."""

    def __init__(self):
        super().__init__()
        self._groups: dict[tuple, FIFOScheduler | None] = {}
        self._members: dict[tuple, set] = {}

    @staticmethod
    def key_of(trial) -> tuple:
        spec = trial.config["trial"]
        return spec.get("family"), spec["dataset"], spec.get("class")

    def group_of(self, trial) -> FIFOScheduler | None:
        key = self.key_of(trial)
        if key not in self._groups:
            spec = trial.config["trial"]
            settings = spec.get("scheduler") or {}
            self._groups[key] = SCHEDULERS[settings.get("kind", "asha")](spec, settings) \
                if settings else None
            self._members[key] = set()
        return self._groups[key]

    def _view(self, controller, trial):
        return _GroupView(controller, self._members[self.key_of(trial)])

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # metric and mode are each group's own (the smoothed select metric)

    def on_trial_add(self, tune_controller, trial):
        if group := self.group_of(trial):
            self._members[self.key_of(trial)].add(trial)
            group.on_trial_add(self._view(tune_controller, trial), trial)

    def on_trial_result(self, tune_controller, trial, result):
        group = self.group_of(trial)
        if group is None:
            return self.CONTINUE
        return group.on_trial_result(self._view(tune_controller, trial), trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        if group := self.group_of(trial):
            group.on_trial_complete(self._view(tune_controller, trial), trial, result)

    def on_trial_remove(self, tune_controller, trial):
        if group := self.group_of(trial):
            group.on_trial_remove(self._view(tune_controller, trial), trial)

    def choose_trial_to_run(self, tune_controller):
        """Waiting trials first, in plan order; then paused ones (PBT's), least trained first.
        A chosen trial with an exploit pending takes it now: paused, its own last report's
        checkpoint is saved (waiting, it was paused before the driver was restarted)."""
        trials = tune_controller.get_trials()
        pending = [t for t in trials if t.status == "PENDING"]
        paused = [t for t in trials if t.status == "PAUSED"]
        chosen = pending[0] if pending else \
            min(paused, key=lambda t: (t.last_result or {}).get("epoch", 0), default=None)
        if chosen is not None:
            if isinstance(group := self.group_of(chosen), FarmPBT):
                group.exploit_pending(chosen)
            forget_what_is_gone(chosen)
        return chosen

    def debug_string(self) -> str:
        kinds = [type(g).__name__ for g in self._groups.values() if g is not None]
        return (f"GroupedScheduler: {len(kinds)} of {len(self._groups)} group(s) of comparable "
                f"trials scheduled ({', '.join(sorted(set(kinds))) or 'none'})")


def forget_what_is_gone(trial) -> None:
    """Before a trial (re)starts: drop the checkpoints Tune lists that no longer exist, and
    point it at its newest checkpoint that does if the one it would restore is gone.

    Tune deletes a checkpoint that drops out of the best K at once but saves the experiment's
    state only every K checkpoints, so after a driver is killed in between, the state a resume
    starts from can list deleted checkpoints. Ray then refuses to restore a deleted latest one,
    and deleting a listed one again raises inside Tune's bookkeeping, which then skips
    advancing the trial's checkpoint number: its next checkpoints overwrite live ones, and a
    better epoch's weights are deleted with a worse one's entry."""
    from ray.tune import Checkpoint

    listed = listed_checkpoints(trial)
    kept = [r for r in listed if checkpoint_exists(r.checkpoint)]
    if len(kept) < len(listed):
        logger.warning("%s: %d listed checkpoint(s) are gone (deleted after the experiment's "
                       "last saved state); forgetting them", trial, len(listed) - len(kept))
        forget_listed(trial, kept)
    latest = trial.latest_checkpoint_result
    if latest is None or latest.checkpoint is None or checkpoint_exists(latest.checkpoint):
        return
    checkpoint = latest.checkpoint
    newest = newest_checkpoint(checkpoint.filesystem, posixpath.dirname(checkpoint.path))
    if newest is None:
        return  # nothing to go on from: Tune says so
    logger.warning("%s: %s is gone (deleted after the experiment's last saved state); going on "
                   "from %s", trial, checkpoint.path, newest)
    restart_from(trial, Checkpoint(newest, filesystem=checkpoint.filesystem), latest.metrics)


def checkpoint_exists(checkpoint) -> bool:
    """Whether a checkpoint Tune lists is still on its filesystem (a folder or a bucket)."""
    import pyarrow.fs

    return checkpoint.filesystem.get_file_info(checkpoint.path).type == \
        pyarrow.fs.FileType.Directory


def newest_checkpoint(filesystem, trial_path: str) -> str | None:
    """The highest-numbered `checkpoint_N` with a state file in a trial's folder."""
    import pyarrow.fs

    from farm.gan.checkpoint import STATE_FILE

    found = filesystem.get_file_info(pyarrow.fs.FileSelector(trial_path, allow_not_found=True))
    numbered = sorted((i.path for i in found if i.type == pyarrow.fs.FileType.Directory
                       and re.fullmatch(r"checkpoint_\d+", posixpath.basename(i.path))),
                      reverse=True)
    return next((p for p in numbered if filesystem.get_file_info(f"{p}/{STATE_FILE}").type
                 == pyarrow.fs.FileType.File), None)


def smoothed(history: list[float], window: int) -> float:
    """Mean of the last `window` values of the selection metric."""
    recent = history[-window:]
    return sum(recent) / len(recent)
