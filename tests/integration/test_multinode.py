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

from farm.cli import main


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


def _trial_nodes() -> dict[str, str]:
    """{node id: state} of every Tune function trainable's actor so far (read from the GCS:
    the state API would need the dashboard, which the farm never starts)."""
    from ray._private.state import actors

    return {a["Address"]["NodeID"]: a["State"] for a in actors().values()
            if "ImplicitFunc" in a["ActorClassName"]}


def test_farm_spreads_over_nodes_and_survives_losing_one(cluster, slow_trials, tmp_path,
                                                        shared_data):
    out = tmp_path / "shared"  # one machine: every node sees it, as NFS would
    removed: list[str] = []
    part_b = out / "e" / "tune" / "tabular-b"

    seen: list[dict] = []  # what the killer saw, for the failure message

    def remove_the_node_running_part_b():
        deadline = time.time() + 400  # generous: CI machines may be busy
        while time.time() < deadline:
            if list(part_b.glob("*/checkpoint_00000[1-9]")):
                nodes = _trial_nodes()
                seen.append(nodes)
                running = {n for n, state in nodes.items() if state == "ALIVE"}
                for node in cluster.worker_nodes:
                    if node.node_id in running:
                        removed.append(node.node_id)
                        cluster.remove_node(node, allow_graceful=False)
                        return
            time.sleep(0.2)

    killer = threading.Thread(target=remove_the_node_running_part_b, daemon=True)
    killer.start()
    code = main(["--trials-dir", str(slow_trials), "--preset", "slow", "--only", "tabular-a,tabular-b",
                 "--tabular-data", str(shared_data / "diabetes" / "diabetes.arff"),
                 "--address", cluster.address, "--gpus-per-trial", "0.5",
                 "--storage-path", str(out), "--name", "e"])
    killer.join(timeout=5)
    assert code == 0
    assert removed, f"never saw part B running on a worker node: {seen[-3:]}"
    summary = json.loads((out / "e" / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]
    worker_ids = {n.node_id for n in cluster.worker_nodes} | set(removed)
    used = set(_trial_nodes())
    assert used <= worker_ids and len(used) == 2  # only GPU nodes, and part B moved
    with (next(part_b.glob("tabular-b_*")) / "progress.csv").open() as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == sorted(set(epochs)) and epochs[-1] == 90  # resumed, not restarted
    assert Path(summary["trials"][1]["checkpoint"]).is_dir()
