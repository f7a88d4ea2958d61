"""Growing the planned trials with Ray Tune, all families in one experiment, and reading back
each trial's best epoch."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune

from farm.infra.errors import ConfigError, FarmError
from farm.infra.storage import Store, remove, write_problem
from farm.tune.progress_table import BestSoFar, FarmReporter
from farm.tune.ray_internals import JsonResults, quiet_ray_noise, started_cluster_address
from farm.tune.schedulers import RANK, SMOOTHED, GroupedScheduler, checkpoint_exists, rank
from farm.tune.trainable import train_gan


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


def _host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    return (host, int(port)) if host and port.isdigit() else None


def _answers(address: str) -> bool:
    where = _host_port(address)
    if where is None:
        return True  # a form Ray resolves itself
    try:
        socket.create_connection(where, timeout=5).close()
    except OSError:
        return False
    return True


def check_address(address: str | None) -> None:
    """Ray retries an unreachable head for minutes; a plain TCP probe says so in seconds."""
    if not address:
        return
    where = _host_port(address)
    if where is None:
        return  # "auto" and other forms Ray resolves itself
    try:
        socket.create_connection(where, timeout=5).close()
    except OSError as exc:
        raise ConfigError(f"--address {address}: no Ray head answers there "
                          f"({exc.strerror or exc})") from None


def gpus_available() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


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
    spec = trial.config["trial"]
    part = f"_{spec['class']}" if spec.get("class") else ""
    return f"{spec['family']}_{spec['dataset']}{part}_{spec['index']:03d}"


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
        grid = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                                  resume_errored=True).fit()
        return [_outcome(result, store) for result in finished(grid)]
    remove(path)  # started but never saved its state: start afresh
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(trials)},
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
    return [_outcome(result, store) for result in finished(grid)]


def finished(grid):
    """The grid, once every trial has ended (done, stopped early or failed). Tune returns from
    an interrupted run (Ctrl-C) as from a finished one; the farm would then export and score
    half-grown trials as if they were done."""
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
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


def _outcome(result, store: Store) -> TrialOutcome:
    """The trial as the driver reads it: for a remote experiment, its small files and best
    checkpoint fetched into the driver's folder."""
    spec = result.config["trial"]
    metric, mode = spec["select"]["metric"], spec["select"]["mode"]
    error = None if result.error is None else f"{type(result.error).__name__}: {result.error}"
    best, best_metrics = best_kept(result.best_checkpoints, metric, mode)
    clean = {k: float(v) for k, v in best_metrics.items()
             if k not in RAY_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    path, checkpoint = store.fetch_trial(result.path, result.filesystem,
                                         best.path if best is not None else None)
    return TrialOutcome(
        spec=spec, trial_id=str(best_metrics.get("trial_id", Path(result.path).name)),
        path=path, error=error,
        best_epoch=int(best_metrics["epoch"]) if "epoch" in best_metrics else None,
        best_metrics=clean, checkpoint_path=checkpoint,
        last_epoch=int(result.metrics["epoch"]) if "epoch" in (result.metrics or {}) else None,
        train_seconds=(result.metrics or {}).get("time_total_s"))
