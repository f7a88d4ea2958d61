"""Every private Ray API the farm touches, behind one door.

`ray==2.60.0` (requirements.txt) is what these were written against. Each entry names the
upstream behaviour it works around, and tests/tune/test_ray_internals.py exercises each against
Ray's real objects, so an upgrade that changes one fails a test that names it instead of a
farm run. Nothing else in the farm may import `ray.*._internal` or touch Ray's `_` names.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import PopulationBasedTraining

# Ray Train's placement-group cleaner asks the State API every second whether the evaluator's
# controller still lives. An embedded Ray runs without the dashboard that serves that API, so
# every ask logged a warning: hundreds of lines on the driver during one evaluator job. Its
# module's logger is named after the module, which is private.
PLACEMENT_GROUP_CLEANER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"

# Ray Train logs "Checkpoint successfully created at: ..." at INFO for every checkpoint of every
# trial (26 lines of a smoke run's terminal). Its storage modules' loggers, v1 and v2, are named
# after those private modules; their warnings still show.
CHECKPOINT_LOGGERS = ("ray.train._internal.storage", "ray.train.v2._internal.execution.storage")
QUIET_LOGGERS = ((PLACEMENT_GROUP_CLEANER, logging.ERROR),
                 *((name, logging.WARNING) for name in CHECKPOINT_LOGGERS))

# Ray Train v2's workers log "Reporting training result 1: TrainingReport(...)" at INFO under a
# logger named after the module's FILE (`logging.getLogger(__file__)`), not `ray.train.*`, so
# Ray Train's own `LoggingConfig` (which the evaluator sets to WARNING) does not reach it. The
# path below Ray's package folder, so that each worker finds its own installation's.
TRAIN_REPORT_FILE = ("train", "v2", "_internal", "execution", "context.py")


def train_report_logger(ray_file: str) -> str:
    """The name of that logger, given `ray.__file__`."""
    return str(Path(ray_file).parent.joinpath(*TRAIN_REPORT_FILE))


# The setup hook of the farm's Ray worker processes (`--debug` leaves it out). A lambda, so that
# it travels by value: a worker runs its hook before it can import the farm (which is also why
# it spells out `train_report_logger` instead of calling it).
quiet_ray_noise = (  # noqa: E731
    lambda: [logging.getLogger(name).setLevel(level) for name, level in (
        *QUIET_LOGGERS,
        (__import__("os").path.join(__import__("os").path.dirname(__import__("ray").__file__),
                                    *TRAIN_REPORT_FILE), logging.WARNING))])


def started_cluster_address() -> str | None:
    """The address `ray start` last recorded on this machine (`<RAY_TMPDIR or /tmp>/ray/
    ray_current_cluster`), or None. A plain `ray.init()` joins exactly this; the farm reads it
    first so that it can say which Ray it uses, and probe it (a stale file outlives a cluster
    that died without `ray stop`). An embedded Ray started by another process's `ray.init()`
    never writes it, so another farm's Ray is never joined."""
    from ray._private.utils import read_ray_address

    return read_ray_address() or None


# ------------------------------------------------------------------ a trial's checkpoint record

def training_result(checkpoint, metrics: dict):
    """Tune's record of one reported checkpoint (`ray.train._internal.session._TrainingResult`):
    what a trial's `latest_checkpoint_result` returns and its checkpoint manager lists."""
    from ray.train._internal.session import _TrainingResult

    return _TrainingResult(checkpoint=checkpoint, metrics=metrics)


def restart_from(trial, checkpoint, metrics: dict) -> None:
    """Make `checkpoint` the one a trial restores when it next starts.

    Tune restores a trial from its checkpoint manager's latest result and has no public way to
    name another: PBT's exploit (the donor's weights, copied into the trial's own folder) and a
    resume whose latest checkpoint was deleted both need to."""
    manager = trial.run_metadata.checkpoint_manager
    manager._latest_checkpoint_result = training_result(checkpoint, metrics)


def listed_checkpoints(trial) -> list:
    """The checkpoints a trial's manager keeps track of (its best K), as records."""
    return list(getattr(trial.run_metadata.checkpoint_manager, "_checkpoint_results", []))


def forget_listed(trial, kept: list) -> None:
    """Keep only `kept` of a trial's listed checkpoints.

    Tune saves a trial's list with the experiment only every K checkpoints but deletes a
    checkpoint that drops out of the best K at once. After a driver is killed in between, the
    list can name deleted checkpoints, and deleting one again raises inside Tune's bookkeeping,
    which then skips advancing the trial's checkpoint number: its next checkpoints overwrite
    live ones."""
    trial.run_metadata.checkpoint_manager._checkpoint_results = kept


# ------------------------------------------------------------------------------ PBT's hooks

class PBTHooks(PopulationBasedTraining):
    """Ray's PBT with the private hooks the farm changes given names of their own.

    Ray's PBT has no public extension points: the farm's PBT (farm/tune/schedulers.py FarmPBT)
    overrides `explore_config` and `decide_exploit` here, and reads and records through the
    helpers below, so that only this class names PBT's private methods and fields."""

    def _get_new_config(self, trial, trial_to_clone):
        return self.explore_config(trial, trial_to_clone)

    def explore_config(self, trial, donor) -> tuple[dict, dict]:
        """(config, operations): the donor's config, explored (perturbed or resampled)."""
        return PopulationBasedTraining._get_new_config(self, trial, donor)

    def _checkpoint_or_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        return self.decide_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    def decide_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        """Called by PBT at each perturbation interval of a trial with the group's quantiles."""
        return PopulationBasedTraining._checkpoint_or_exploit(
            self, trial, tune_controller, upper_quantile, lower_quantile)

    def last_result(self, trial) -> dict:
        """The last result PBT recorded for a trial."""
        return self._trial_state[trial].last_result

    def mutations(self) -> dict:
        """The hyperparameter mutations PBT was built with."""
        return self._hyperparam_mutations

    def record_exploit(self, trial, epoch: int) -> None:
        """Count an exploit taken outside PBT's own `_exploit`, and start the trial's next
        perturbation interval at `epoch`, as `_exploit` does."""
        state = self._trial_state[trial]
        state.last_perturbation_time = state.last_train_time = epoch
        self._num_perturbations += 1


# ----------------------------------------------------------------------------- result.json

class JsonResults(JsonLoggerCallback):
    """Tune's result.json writer, without its loss of lines.

    At every start of a trial that has a checkpoint (a retry, a PBT exploit, a resumed trial)
    Tune copies the trial's result.json down from storage over the driver's copy (the private
    `_restore_from_remote`). Within one driver session storage lags the driver, so every line
    logged since the last sync was lost: a PBT run resumed after a killed driver ended with a
    trial whose result.json was empty. Once this session's copy has lines it is never older
    than storage's, so keep it."""

    def _restore_from_remote(self, file_name: str, trial) -> None:
        local = Path(trial.local_path, file_name)
        if local.exists() and local.stat().st_size > 0:
            return
        super()._restore_from_remote(file_name, trial)
