"""Which Ray a run uses (`--local`, `--address`, a cluster `ray start` runs here, else an
embedded one), joining or starting it, and checking in seconds that it can run the farm: a head
that answers, storage every node can reach, GPUs when they are asked for. The farm's one
`ray.init`; Ray Tune and Ray Train are farm/tune/'s and the evaluator's.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import ray

from farm.infra.errors import ConfigError
from farm.infra.storage import Store, write_problem
from farm.tune.ray_internals import quiet_ray_noise, started_cluster_address


@dataclass(frozen=True)
class RayChoice:
    """Which Ray a run uses: `address` None starts an embedded one."""

    address: str | None
    line: str  # what the run prints first
    # found as a plain `ray.init()` finds it: joined the same way, so that Ray turns on the token
    # authentication a `ray start` cluster uses by default (an explicit address never does)
    found_here: bool = False


def choose_ray(address: str | None, local: bool = False) -> RayChoice:
    """As a plain `ray.init()` would choose, but said aloud: `--local` forces an embedded Ray;
    else `--address` / RAY_ADDRESS; else a cluster `ray start` runs on this machine (the head
    of `ray up cluster.yaml`), if it answers; else an embedded Ray. Seconds at most."""
    if local:
        return RayChoice(None, "Ray: an embedded Ray on this machine (--local)")
    if address:
        check_address(address)
        return RayChoice(address, f"Ray: joining the cluster at {address} (--address or "
                                  "RAY_ADDRESS; --local starts an embedded Ray instead)")
    found = started_cluster_address()
    if found and _answers(found):
        return RayChoice(found, f"Ray: joining the cluster `ray start` runs on this machine, at "
                                f"{found} (--local starts an embedded Ray instead)",
                         found_here=True)
    stale = f" (`ray start` recorded {found}, which does not answer)" if found else ""
    return RayChoice(None, f"Ray: an embedded Ray on this machine: no RAY_ADDRESS and no "
                           f"cluster started here{stale}")


def connect(choice: RayChoice, quiet: bool = True) -> None:
    """Join the chosen cluster, else start an embedded local Ray. `quiet` (not `--debug`): the
    workers' known noise is silenced at its source (farm.tune.ray_internals.quiet_ray_noise)."""
    # Tune warns when best-K checkpointing snapshots state often; with small trials it always does.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if ray.is_initialized():
        return
    runtime_env = {"worker_process_setup_hook": quiet_ray_noise} if quiet else None
    if choice.address:
        try:
            ray.init(address=None if choice.found_here else choice.address, log_to_driver=True,
                     runtime_env=runtime_env)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--address {choice.address}: cannot join a Ray cluster there "
                              f"({first})") from None
    else:
        ray.init(address="local", include_dashboard=False, log_to_driver=True,
                 runtime_env=runtime_env)


def _unreachable(address: str) -> OSError | None:
    """Why a plain TCP probe of the head's port fails, or None when it answers (or `address` is
    a form Ray resolves itself, such as "auto"): seconds, where Ray retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        return exc
    return None


def _answers(address: str) -> bool:
    return _unreachable(address) is None


def check_address(address: str | None) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP probe says so in seconds."""
    problem = _unreachable(address) if address else None
    if problem is not None:
        raise ConfigError(f"--address {address}: no Ray head answers there "
                          f"({problem.strerror or problem})") from None


def gpus_available() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def cpus() -> float:
    """The CPUs the cluster offers now (an autoscaled cluster's count at the end of the run)."""
    return float(ray.cluster_resources().get("CPU", 0))


def check_storage_shared(store: Store) -> None:
    """On a cluster of several nodes, every node must reach the experiment's storage (Tune
    writes checkpoints from the worker nodes): a marker written in a folder must be readable on
    each node, and each node must be able to write to a bucket (its credentials or role may
    differ from the driver's). Otherwise the first checkpoint would fail, on a node, later."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    others = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here]
    if not others:
        return

    def on_each(probe, *args) -> list:
        """probe(*args, node) on every other node (the node's id keeps their files apart)."""
        task = ray.remote(num_cpus=0)(probe)
        return ray.get([task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            node, soft=False)).remote(*args, node) for node in others], timeout=120)

    if store.remote:
        def node_writes(uri: str, node: str) -> str | None:
            return write_problem(uri, f".shared-{os.getpid()}-{node[:12]}")

        problems = [p for p in on_each(node_writes, store.location()) if p is not None]
        if problems:
            raise ConfigError(f"--storage-path: {len(problems)} of the cluster's {len(others)} "
                              f"other nodes cannot write there ({problems[0]}); give every "
                              "node the bucket's credentials or role", where=store.public)
        return
    marker = store.folder / f".shared-{os.getpid()}"
    marker.write_text("gan-farm")
    try:
        seen = on_each(lambda path, node: os.path.isfile(path), str(marker))
    finally:
        marker.unlink(missing_ok=True)
    blind = sum(not s for s in seen)
    if blind:
        raise ConfigError(f"--storage-path: {blind} of the cluster's {len(others)} other nodes "
                          "cannot see this folder; use a path every node mounts (NFS)",
                          where=store.folder.parent)
