"""The door to Ray's private APIs (farm/tune/ray_internals.py), each exercised against Ray's real
objects: a Ray upgrade that changes one fails here, by name. The embedded Ray's worker setup hook
(it must run in a process that cannot import the farm), a trial's checkpoint record, PBT's
hooks, and the result.json writer that keeps its lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import ray.cloudpickle
from ray.tune.logger import JsonLoggerCallback

from farm.tune.ray_internals import (CHECKPOINT_LOGGERS, PLACEMENT_GROUP_CLEANER, JsonResults,
                                     PBTHooks, forget_listed, listed_checkpoints, quiet_ray_noise,
                                     restart_from, train_report_logger, training_result)

UNPICKLE_AND_RUN = (
    "import logging, sys, ray.cloudpickle\n"
    "hook = ray.cloudpickle.loads(sys.stdin.buffer.read())\n"
    "hook()\n"
    "print(logging.getLogger(sys.argv[1]).level)\n")


@pytest.mark.parametrize("name", [PLACEMENT_GROUP_CLEANER, *CHECKPOINT_LOGGERS])
def test_the_quieted_modules_still_log_under_their_module_names(name):
    import importlib

    module = importlib.import_module(name)
    assert module.logger.name == name


def test_ray_train_workers_still_announce_each_report_under_the_modules_file_name():
    """What the hook quiets beside the module loggers: Ray Train v2's "Reporting training
    result" INFO line, logged under the module's file path, which its LoggingConfig misses."""
    import inspect

    from ray.train.v2._internal.execution import context

    assert context.logger is logging.getLogger(train_report_logger(ray.__file__))
    assert 'f"Reporting training result {report_call_index}' in inspect.getsource(context)


def test_ray_train_still_announces_each_checkpoint_at_info():
    """What the checkpoint loggers are quieted for: one INFO line per persisted checkpoint."""
    import importlib
    import inspect

    for name in CHECKPOINT_LOGGERS:
        source = inspect.getsource(importlib.import_module(name))
        assert 'logger.info(f"Checkpoint successfully created at:' in source, name


def _real_trial(epochs: int = 100):
    from ray.tune.experiment import Trial

    return Trial("__fake", config={"trial": {"epochs": epochs}}, stub=True)


def _checkpoint(folder: Path):
    from ray.tune import Checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    return Checkpoint(str(folder))


def test_restart_from_names_the_checkpoint_a_real_trial_restores(tmp_path):
    trial = _real_trial()
    assert trial.latest_checkpoint_result is None and trial.checkpoint is None
    restart_from(trial, _checkpoint(tmp_path / "donor"), {"epoch": 40})
    assert trial.latest_checkpoint_result.metrics == {"epoch": 40}
    assert trial.checkpoint.path == str(tmp_path / "donor")  # what Tune restores from


def test_listed_checkpoints_are_the_managers_best_k_and_forgetting_one_drops_it(tmp_path):
    from ray.train._internal.checkpoint_manager import _CheckpointManager
    from ray.tune import CheckpointConfig

    trial = _real_trial()
    trial.run_metadata.checkpoint_manager = _CheckpointManager(CheckpointConfig(
        num_to_keep=2, checkpoint_score_attribute="s", checkpoint_score_order="max"))
    for number, score in ((0, 0.1), (1, 0.3), (2, 0.2)):
        trial.run_metadata.checkpoint_manager.register_checkpoint(
            training_result(_checkpoint(tmp_path / f"c{number}"), {"s": score}))
    listed = listed_checkpoints(trial)
    assert sorted(r.metrics["s"] for r in listed) == [0.2, 0.3]
    forget_listed(trial, [r for r in listed if r.metrics["s"] == 0.3])
    assert [r.metrics["s"] for r in trial.run_metadata.checkpoint_manager
            .best_checkpoint_results] == [0.3]
    assert listed_checkpoints(_real_trial()) == []


class _Recording(PBTHooks):
    """PBT whose farm-named hooks record that PBT called them."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.decided, self.explored = [], []

    def decide_exploit(self, trial, tune_controller, upper_quantile, lower_quantile):
        self.decided.append((trial, list(upper_quantile), list(lower_quantile)))
        return super().decide_exploit(trial, tune_controller, upper_quantile, lower_quantile)

    def explore_config(self, trial, donor):
        self.explored.append((trial, donor))
        return super().explore_config(trial, donor)


def test_pbt_calls_the_farm_named_hooks_and_keeps_the_state_they_read(tmp_path):
    """Ray's PBT calls `_checkpoint_or_exploit` at each perturbation interval and, exploiting,
    `_get_new_config`; it keeps each trial's last result, its mutations and a count of
    perturbations in private fields. FarmPBT relies on all five."""
    pbt = _Recording(time_attr="epoch", metric="m", mode="max", perturbation_interval=10,
                     quantile_fraction=0.5, log_config=False,
                     hyperparam_mutations={"trial": {"params": {"lr": [0.1, 0.2]}}})
    trials = [_real_trial() for _ in range(2)]
    controller = SimpleNamespace(  # the controller's side of PBT: saving is instant here
        search_alg=None, get_trials=lambda: trials, get_live_trials=lambda: trials,
        pause_trial=lambda *a, **k: None,
        _schedule_trial_save=lambda trial, result: trial.checkpoint)
    for trial in trials:
        trial.set_status(trial.RUNNING)
        trial.config = {"trial": {"epochs": 100, "params": {"lr": 0.1}}}
        pbt.on_trial_add(controller, trial)
    strong, weak = trials
    restart_from(strong, _checkpoint(tmp_path / "strong"), {"epoch": 10})
    for epoch in (10, 20):  # the second interval: the strong trial has saved in the first
        pbt.on_trial_result(controller, strong, {"epoch": epoch, "m": 1.0})
        pbt.on_trial_result(controller, weak, {"epoch": epoch, "m": 0.0})
    assert pbt.decided and pbt.decided[-1] == (weak, [strong], [weak])
    assert pbt.explored == [(weak, strong)]  # Ray's own exploit asked for the new config
    assert pbt.last_result(weak)["m"] == 0.0
    assert pbt.mutations() == {"trial": {"params": {"lr": [0.1, 0.2]}}}
    before = pbt._num_perturbations
    pbt.record_exploit(weak, 30)
    assert pbt._num_perturbations == before + 1
    assert pbt._trial_state[weak].last_perturbation_time == 30


def test_the_quieting_hook_travels_by_value_and_quiets_only_its_loggers(tmp_path):
    """A hook Ray sends by reference killed every worker ('No module named farm') in the first
    version; by value it runs anywhere and leaves other loggers as they were."""
    payload = ray.cloudpickle.dumps(quiet_ray_noise)
    out = subprocess.run([sys.executable, "-I", "-c", UNPICKLE_AND_RUN, PLACEMENT_GROUP_CLEANER],
                         input=payload, capture_output=True, cwd=tmp_path, check=True)
    assert int(out.stdout) == logging.ERROR
    before = logging.getLogger("ray.train").level
    quiet_ray_noise()
    assert logging.getLogger("ray.train").level == before
    assert logging.getLogger(PLACEMENT_GROUP_CLEANER).getEffectiveLevel() == logging.ERROR
    for name in CHECKPOINT_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
    assert logging.getLogger(train_report_logger(ray.__file__)).level == logging.WARNING


class _Trial:
    """What Tune's JSON logger reads of a trial: its driver-side folder, its storage folder and
    whether it has a checkpoint (only then does Tune copy result.json down)."""

    def __init__(self, local: Path, remote: Path):
        from pyarrow.fs import LocalFileSystem

        self.local_path, self.config, self.checkpoint = str(local), {"x": 1}, object()
        self.storage = SimpleNamespace(trial_fs_path=str(remote),
                                       storage_filesystem=LocalFileSystem())

    def init_local_path(self) -> None:
        Path(self.local_path).mkdir(parents=True, exist_ok=True)


def _lines_after_a_restart(callback, tmp_path: Path) -> list[dict]:
    """Two results, a restart before storage was synced (a PBT exploit), one more result."""
    remote, local = tmp_path / "storage" / "t", tmp_path / "driver" / "t"
    remote.mkdir(parents=True)
    local.mkdir(parents=True)  # Tune makes it before any logger runs
    (remote / "result.json").write_text('{"epoch": 0}\n')  # storage's copy: one sync behind
    trial = _Trial(local, remote)
    callback.log_trial_start(trial)
    for epoch in (1, 2):
        callback.log_trial_result(epoch, trial, {"epoch": epoch})
    callback.log_trial_start(trial)  # the restart
    callback.log_trial_result(3, trial, {"epoch": 3})
    callback.log_trial_end(trial)
    return [json.loads(line) for line in (local / "result.json").read_text().splitlines()]


def test_a_restarted_trial_keeps_the_results_the_driver_logged_since_the_last_sync(tmp_path):
    kept = _lines_after_a_restart(JsonResults(), tmp_path / "farm")
    assert [r["epoch"] for r in kept] == [0, 1, 2, 3]
    # Tune's own logger loses epochs 1 and 2 (the reason for JsonResults; drop it when not)
    lost = _lines_after_a_restart(JsonLoggerCallback(), tmp_path / "tune")
    assert [r["epoch"] for r in lost] == [0, 3]


def test_no_other_farm_module_touches_rays_private_apis():
    """The door is the only one: a private Ray name anywhere else in farm/ is a finding."""
    import re

    farm = Path(__file__).resolve().parents[2] / "farm"
    private = re.compile(r"ray(\.\w+)*\._internal|_TrainingResult|_CheckpointManager|"
                         r"\._trial_state|\._hyperparam_mutations|\._num_perturbations|"
                         r"_checkpoint_results|_latest_checkpoint_result|_restore_from_remote|"
                         r"_get_new_config|_checkpoint_or_exploit|_schedule_trial_save")
    found = [f"{path.relative_to(farm)}:{number}" for path in sorted(farm.rglob("*.py"))
             if path.name != "ray_internals.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if private.search(line)]
    assert found == []


def test_started_cluster_address_reads_what_ray_start_records(tmp_path, monkeypatch):
    """`ray start` writes the head's address to <RAY_TMPDIR>/ray/ray_current_cluster, and a
    plain `ray.init()` joins it; the farm reads the same record."""
    from ray._private.utils import write_ray_address

    from farm.tune.ray_internals import started_cluster_address

    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    assert started_cluster_address() is None
    (tmp_path / "ray").mkdir()
    write_ray_address("10.0.0.7:6379", str(tmp_path / "ray"))
    assert started_cluster_address() == "10.0.0.7:6379"
