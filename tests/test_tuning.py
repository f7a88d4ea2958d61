"""The embedded Ray's worker setup hook: it must run in a process that cannot import the farm."""

from __future__ import annotations

import logging
import subprocess
import sys

import ray.cloudpickle

from farm.tuning import PLACEMENT_GROUP_CLEANER, quiet_placement_group_cleaner

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
