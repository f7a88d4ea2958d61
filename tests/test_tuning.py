"""Ray and Tune as the farm configures them: the embedded Ray's worker setup hook (it must run
in a process that cannot import the farm) and the result.json writer that keeps its lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import ray.cloudpickle
from ray.tune.logger import JsonLoggerCallback

from farm.tuning import PLACEMENT_GROUP_CLEANER, JsonResults, quiet_placement_group_cleaner

UNPICKLE_AND_RUN = (
    "import logging, sys, ray.cloudpickle\n"
    "hook = ray.cloudpickle.loads(sys.stdin.buffer.read())\n"
    "hook()\n"
    "print(logging.getLogger(sys.argv[1]).level)\n")


def test_the_cleaner_hook_travels_by_value_and_silences_only_the_cleaner(tmp_path):
    """A hook Ray sends by reference killed every worker ('No module named farm') in the first
    version; by value it runs anywhere and leaves other loggers as they were."""
    payload = ray.cloudpickle.dumps(quiet_placement_group_cleaner)
    out = subprocess.run([sys.executable, "-I", "-c", UNPICKLE_AND_RUN, PLACEMENT_GROUP_CLEANER],
                         input=payload, capture_output=True, cwd=tmp_path, check=True)
    assert int(out.stdout) == logging.ERROR
    before = logging.getLogger("ray.train").level
    quiet_placement_group_cleaner()
    assert logging.getLogger("ray.train").level == before
    assert logging.getLogger(PLACEMENT_GROUP_CLEANER).getEffectiveLevel() == logging.ERROR


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
