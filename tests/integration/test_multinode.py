"""Several Ray nodes on one machine (`ray.cluster_utils.Cluster`): the farm joins with
`--address`, its trials land on the worker nodes that hold (logical) GPUs, and a node removed
mid-run costs no finished trial: the trial it ran goes on elsewhere from its latest checkpoint."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest

from farm.pipeline.cli import main


@pytest.fixture
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    for _ in range(2):  # logical GPUs: the scheduler's view; the trials still train on CPU
        cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _raylets(cluster) -> dict[int, str]:
    """{raylet pid: node id} of every node started so far."""
    from ray._private import ray_constants

    nodes = [cluster.head_node, *cluster.worker_nodes]
    return {n.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid: n.node_id
            for n in nodes}


def _node_of(pid: int, raylets: dict[int, str]) -> str | None:
    """The node whose raylet started worker process `pid` (a worker is the raylet's child);
    None once the process is gone. Read from the process tree rather than Ray's actor table,
    whose view lagged on a busy CI machine."""
    import psutil

    try:
        for parent in psutil.Process(pid).parents():
            if parent.pid in raylets:
                return raylets[parent.pid]
    except psutil.NoSuchProcess:
        return None
    return None


def _last_pid(trial_dir: Path) -> int | None:
    """The worker pid in the trial's latest Tune result row."""
    results = trial_dir / "result.json"
    lines = results.read_text().splitlines() if results.exists() else []
    for line in reversed(lines):
        try:
            return int(json.loads(line)["pid"])
        except (ValueError, KeyError):
            continue  # a row being written
    return None


def test_farm_spreads_over_nodes_and_survives_losing_one(cluster, slow_trials, tmp_path,
                                                        shared_data):
    out = tmp_path / "shared"  # one machine: every node sees it, as NFS would
    removed: list[str] = []
    tune_dir = out / "e" / "tune"
    raylets = _raylets(cluster)
    nodes_seen: dict[str, set[str]] = {}  # family -> nodes its trial ran on
    done = threading.Event()

    def watch_and_remove_the_node_running_part_b():
        deadline = time.time() + 400  # generous: CI machines may be busy
        while time.time() < deadline and not done.is_set():
            for trial_dir in tune_dir.glob("*_*"):
                pid = _last_pid(trial_dir) if trial_dir.is_dir() else None
                node = _node_of(pid, raylets) if pid else None
                if node:  # trial folders are <family>_<dataset>_<n>
                    nodes_seen.setdefault(trial_dir.name.split("_")[0], set()).add(node)
            if not removed and list(tune_dir.glob("tabular-b_*/checkpoint_00000[1-9]")):
                running = nodes_seen.get("tabular-b", set())
                for node in cluster.worker_nodes:
                    if node.node_id in running:
                        removed.append(node.node_id)
                        cluster.remove_node(node, allow_graceful=False)
                        break
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_and_remove_the_node_running_part_b, daemon=True)
    watcher.start()
    code = main(["--trials-dir", str(slow_trials), "--preset", "slow",
                 "--only", "tabular-a,tabular-b",
                 "--tabular-data", str(shared_data / "diabetes" / "diabetes.arff"),
                 "--address", cluster.address, "--gpus-per-trial", "0.5",
                 "--storage-path", str(out), "--name", "e"])
    done.set()
    watcher.join(timeout=5)
    assert code == 0
    assert removed, f"never saw part B running on a worker node: {nodes_seen}"
    summary = json.loads((out / "e" / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]
    worker_ids = {n.node_id for n in cluster.worker_nodes} | set(removed)
    used = set().union(*nodes_seen.values())
    assert used <= worker_ids  # only GPU nodes
    assert len(nodes_seen["tabular-b"]) == 2  # part B moved off the removed node
    with (next(tune_dir.glob("tabular-b_*")) / "progress.csv").open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 90  # resumed, not restarted
    assert Path(summary["trials"][1]["checkpoint"]).is_dir()


def test_every_node_must_reach_the_storage_before_any_trial_starts(cluster, s3, tmp_path,
                                                                   monkeypatch):
    """A bucket: each node writes a marker there (a worker's credentials may differ from the
    driver's); a folder: each node reads the driver's marker. The folder case's refusal (a
    node-local path) cannot be staged on one machine, whose nodes share a disk."""
    import ray

    from farm.infra.errors import ConfigError
    from farm.infra.storage import Store
    from farm.pipeline.cluster import check_storage_shared

    uri, env = s3
    credentials = {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_DEFAULT_REGION")}
    for key, value in credentials.items():
        monkeypatch.setenv(key, value)  # the driver's own probe
    ray.init(address=cluster.address, runtime_env={"env_vars": credentials})  # the nodes'
    monkeypatch.setenv("FARM_MIRROR", str(tmp_path / "mirror"))
    check_storage_shared(Store.open(uri, "ok"))
    folder = Store.open(str(tmp_path / "shared"), "ok")
    folder.folder.mkdir(parents=True)
    check_storage_shared(folder)
    assert not list(folder.folder.iterdir())  # its marker is gone again
    missing = Store.open(uri.replace("farm-bucket", "no-such-bucket"), "x")
    with pytest.raises(ConfigError, match="2 of the cluster's 2 other nodes cannot write"):
        check_storage_shared(missing)
