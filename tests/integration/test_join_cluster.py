"""`ray up cluster.yaml`, then `python run_farm.py` on the head: the farm joins the cluster that
`ray start` runs there instead of starting an embedded Ray beside it. A real `ray start --head
--block`, in a Ray temp folder of its own (RAY_TMPDIR), stopped through its own process group:
never `ray stop`, which would end every Ray on the machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from gpu_check import TERMINAL_NOISE  # noqa: E402  (the list the GPU check reports on)


def _free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


@pytest.fixture
def started_head():
    """(environment naming the head's temp folder, the head's port, that folder)."""
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(temp)
    port = _free_port()
    head = subprocess.Popen(
        [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
         f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         "--disable-usage-stats"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (temp / "ray" / "ray_current_cluster").exists():
            assert head.poll() is None, "ray start exited"
            assert time.monotonic() < deadline, "ray start did not come up in 180 s"
            time.sleep(1)
        yield env, port, temp
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:  # `ray start --block` outlived 30 s of SIGTERM on every run: the KILL ends it
            head.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        os.killpg(head.pid, signal.SIGKILL) if _group_alive(head.pid) else None
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.timeout(900)  # a Ray head's start-up and a tiny farm, on 2 busy cores
def test_a_plain_run_on_a_head_joins_the_cluster_ray_start_runs(started_head, shared_data,
                                                                tmp_path):
    env, port, temp = started_head
    out = subprocess.run(
        [sys.executable, "run_farm.py", "--preset", "tiny", "--only", "tabular-a",
         "--data-dir", str(shared_data), "--storage-path", str(tmp_path), "--name", "joined"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    first = out.stdout.splitlines()[0]
    assert first.startswith("Ray: joining the cluster `ray start` runs on this machine, at ")
    assert f":{port} " in first
    # The trials ran in the head's Ray: its session's workers ran the trainable (their
    # checkpoint lines, which named the trials, are quieted at their source now), and no second
    # (embedded) Ray session was started in this temp folder.
    sessions = [p for p in (temp / "ray").glob("session_2*") if p.is_dir()]
    assert len(sessions) == 1
    logged = "".join(p.read_text(errors="replace")
                     for p in (sessions[0] / "logs").glob("worker-*"))
    assert ":actor_name:train_gan" in logged
    # The terminal shows progress, not a log (issue 19): the farm's table, none of the noise
    shown = out.stdout + out.stderr
    assert "trials: 2 of 2 done" in shown and "tabular-a diabetes #1" in shown
    for noise in TERMINAL_NOISE:
        assert noise not in shown, noise
    assert len(shown.splitlines()) <= 60, shown

