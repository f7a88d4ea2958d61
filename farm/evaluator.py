"""The final evaluator: can a classifier learn from what the farm made?

For every image dataset, a fresh classifier (a torchvision ResNet, `trials/evaluator.yaml`) is
trained from scratch on
  * the real train split only        -> the ceiling,
  * each pool of synthetic images     -> CAS, classification accuracy score,
  * real train split + that pool      -> does the farm's output help as augmentation?
and each is tested on the held-out real test split, which no GAN, judge or epoch choice ever saw.
Every classifier of a dataset takes the same number of optimizer steps (`epochs` passes over
the real train split), so that a bigger training set does not win by more steps alone, and the
last step is tested: nothing is chosen on the test split. Real + synthetic holds every real
image once per pass and a fresh draw of synthetic ones making `synthetic_share` of it, so its
answer does not depend on how many images a pool happens to hold.

It runs as one Ray Train job per dataset (`TorchTrainer`): GPU workers when the cluster has GPUs,
CPU workers otherwise; with more than one worker each trains on its shard of every epoch's
shuffled order and DDP averages the gradients. The tasks run one after another inside the job,
so workers start once. Rank 0 tests each model and returns the confusion matrices in the job's
final checkpoint.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from farm.data.images import label_tensor, to_unit_range
from farm.errors import ConfigError, FarmError, settings_from
from farm.train.classifier import (ARCHS, build_model, confusion, scores, steps_per_epoch,
                                   train_epoch)

RESULTS_FILE = "evaluation.json"


@dataclass(frozen=True)
class EvaluatorConfig:
    """How the evaluator's classifiers are built and trained (`evaluator:` in trials/*.yaml)."""

    arch: str = "resnet34"          # the fruit report's evaluator: its discriminator's ResNet34
    small_input_stem: bool = False
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3                # AdamW, cosine schedule per step
    weight_decay: float = 0.05
    augment: bool = True            # random flip + reflect-padded crop
    synthetic_share: float = 0.25   # real + synthetic (and its noise control): extras per pass
    workers: int = 0                # 0: one per GPU (up to 8) on a GPU cluster, else one CPU worker
    cpus_per_worker: int = 0        # 0: a whole node's CPUs for a lone CPU worker, else 1
    seed: int = 0

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ConfigError(f"evaluator.arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < (2 if name == "batch_size" else 1):
                raise ConfigError(f"evaluator.{name} is too small: {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError("evaluator needs lr > 0 and weight_decay >= 0")
        if not 0 < self.synthetic_share < 1:
            raise ConfigError("evaluator.synthetic_share must be between 0 and 1 (the synthetic "
                              f"part of every real + synthetic pass), got {self.synthetic_share}")
        if self.workers < 0 or self.cpus_per_worker < 0:
            raise ConfigError("evaluator.workers and evaluator.cpus_per_worker must be >= 0")


def evaluator_config(values: dict | None) -> EvaluatorConfig:
    return settings_from(EvaluatorConfig, values, "evaluator")


@dataclass
class Task:
    """One training set: uint8 images [N, H, W, 3] and labels [N]. With `real_count`, the first
    `real_count` images are real and the rest are extras (a pool, or the noise control) that
    every pass draws from at the evaluator's `synthetic_share`."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    real_count: int | None = None


# --------------------------------------------------------------------------- on each worker


def shard(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's slice of a shared order, padded by wrapping so every rank takes the same
    number of steps (DDP's all-reduce needs them in lockstep), as DistributedSampler does."""
    per_rank = math.ceil(len(order) / world)
    padded = order.repeat(math.ceil(per_rank * world / max(len(order), 1)))[:per_rank * world]
    return padded[rank::world]


def pass_order(n: int, real_count: int | None, share: float,
               generator: torch.Generator) -> torch.Tensor:
    """One pass over a task, as indices. A plain task: a permutation of all n. A real + extras
    task: every real image once and a fresh draw of extras (cycling when there are too few)
    making `share` of the pass, shuffled together. Concatenating instead lets the pool's size
    decide the answer: 3,840 synthetic images beside 768 real ones are 83% of every batch
    (bench/RESULTS.md: such a classifier scored 0.43 where real alone scored 0.59)."""
    if real_count is None or real_count >= n:
        return torch.randperm(n, generator=generator)
    extras = n - real_count
    want = max(1, round(real_count * share / (1 - share)))
    drawn = torch.randperm(extras, generator=generator).repeat(math.ceil(want / extras))[:want]
    both = torch.cat([torch.arange(real_count), real_count + drawn])
    return both[torch.randperm(len(both), generator=generator)]


def step_budget(config: EvaluatorConfig, reference_images: int, world: int = 1) -> int:
    """Optimizer steps every classifier of a dataset gets: `epochs` passes over the real train
    split. The same for all, so that real + synthetic is not ahead merely by taking more steps."""
    return max(1, config.epochs * steps_per_epoch(math.ceil(reference_images / world),
                                                  config.batch_size))


def fit_and_test(task: Task, test: Task, num_classes: int, config: EvaluatorConfig, device,
                 rank: int = 0, world: int = 1, wrap=lambda m: m, say=print,
                 reference_images: int | None = None) -> dict | None:
    """Train one classifier on ``task`` for the dataset's step budget and test it on ``test``
    (rank 0 only; others None). ``reference_images``: the real train split's size."""
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # the same initial weights on every rank
        torch.manual_seed(config.seed)
        model = build_model(config.arch, num_classes, config.small_input_stem)
    model = wrap(model.to(device))
    x, y = to_unit_range(task.images, device), label_tensor(task.labels, device)
    order_gen = torch.Generator().manual_seed(config.seed)  # identical orders on every rank
    aug_gen = torch.Generator(device=device).manual_seed(config.seed + 1 + rank)
    budget = step_budget(config, reference_images or len(x), world)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, budget)
    done, passes, report_every = 0, 0, max(1, budget // 5)
    while done < budget:
        order = pass_order(len(x), task.real_count, config.synthetic_share, order_gen)
        mine = shard(order, rank, world).to(device)
        take = min(steps_per_epoch(len(mine), config.batch_size), budget - done)
        mine = mine[:take * config.batch_size]
        loss = train_epoch(model, opt, sched, x, y, mine, config.batch_size, aug_gen,
                           config.augment)
        passes += 1
        if rank == 0 and ((done + take) // report_every > done // report_every
                          or done + take == budget):
            say(f"evaluator {task.name}: step {done + take}/{budget} (pass {passes}), "
                f"train loss {float(loss) / len(mine):.4f}")
        done += take
    if rank != 0:
        return None
    net = getattr(model, "module", model)  # DDP's wrapped model, for a plain forward
    matrix, _ = confusion(net, to_unit_range(test.images, device),
                          label_tensor(test.labels, device), num_classes)
    return {"matrix": matrix.cpu().tolist(), "train_images": int(len(x)),
            "synthetic_share": config.synthetic_share if task.real_count is not None else None,
            "steps": budget,
            "seconds": round(time.perf_counter() - started, 1)}


def _say(line: str) -> None:
    """A worker's progress line, shown once on the driver. Ray Train sends a plain `print` to
    the root logger and also to the redirected stdout, so every line arrived twice."""
    print(line, file=sys.__stdout__, flush=True)


def _train_loop(loop_config: dict) -> None:
    """The Ray Train worker function: every task in turn, then rank 0's results as a checkpoint."""
    import ray
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    config = EvaluatorConfig(**loop_config["config"])
    test = ray.get(loop_config["test"])
    results = {}
    for ref in loop_config["tasks"]:
        task = ray.get(ref)
        out = fit_and_test(task, test, loop_config["num_classes"], config, device, rank, world,
                           wrap=ray.train.torch.prepare_model if world > 1 else (lambda m: m),
                           say=_say,
                           reference_images=loop_config["reference_images"])
        if out is not None:
            results[task.name] = out
            acc = scores(out["matrix"], range(loop_config["num_classes"]))["accuracy"]
            _say(f"evaluator {task.name}: accuracy {acc:.3f} on {len(test.labels)} held-out "
                 "real images")
    # One report, with the results: Ray Train logs every report as an INFO line, and a report
    # per classifier carried nothing a reader or a restart could use.
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = None
        if rank == 0:
            (Path(directory) / RESULTS_FILE).write_text(json.dumps(results))
            checkpoint = ray.train.Checkpoint.from_directory(directory)
        ray.train.report({"tasks_done": len(loop_config["tasks"])}, checkpoint=checkpoint)


# --------------------------------------------------------------------------- in the driver


def scaling(config: EvaluatorConfig, use_gpu: bool) -> dict:
    """Workers and their resources from the cluster: a GPU each on a GPU cluster, else CPUs."""
    import ray

    if use_gpu:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        workers = config.workers or max(1, min(gpus, 8))
        return {"num_workers": workers, "use_gpu": True,
                "resources_per_worker": {"CPU": float(config.cpus_per_worker or 1), "GPU": 1.0}}
    workers = config.workers or 1
    node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    biggest = int(max(node_cpus, default=1)) or 1
    cpus = config.cpus_per_worker or (biggest if workers == 1 else 1)
    return {"num_workers": workers, "use_gpu": False,
            "resources_per_worker": {"CPU": float(min(cpus, biggest))}}


def evaluate(name: str, tasks: list[Task], test: Task, classes, config: EvaluatorConfig,
             storage: str | Path, use_gpu: bool, reference_images: int | None = None) -> dict:
    """Run every task of one dataset as one TorchTrainer job; {task name: RESULT} where RESULT
    has accuracy, per_class, confusion, train_images, steps and seconds. Every task trains for
    the same number of steps: `epochs` passes over `reference_images` (the real train split;
    default: the first task's size)."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from farm.storage import join, remove

    storage = str(storage)  # a folder, or a URI for a remote experiment
    shape = scaling(config, use_gpu)
    run_name = f"evaluator-{name}"
    remove(join(storage, run_name))  # a rerun trains afresh rather than resuming
    print(f"Evaluator for {name}: {len(tasks)} classifiers ({config.arch}, {config.epochs} "
          f"epochs) on {shape['num_workers']} {'GPU' if use_gpu else 'CPU'} worker(s), "
          f"each tested on {len(test.labels)} held-out real images", flush=True)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"config": asdict(config), "num_classes": len(classes),
                           "reference_images": reference_images or len(tasks[0].labels),
                           "test": ray.put(test), "tasks": [ray.put(t) for t in tasks]},
        scaling_config=ray.train.ScalingConfig(**shape),
        run_config=ray.train.RunConfig(name=run_name, storage_path=storage),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's error
        raise FarmError(f"the evaluator job for {name} failed: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    if result.error is not None or result.checkpoint is None:
        raise FarmError(f"the evaluator job for {name} failed: {result.error}")
    with result.checkpoint.as_directory() as directory:
        raw = json.loads((Path(directory) / RESULTS_FILE).read_text())
    out = {}
    for task_name, values in raw.items():
        out[task_name] = {**scores(values["matrix"], classes),
                          "train_images": values["train_images"],
                          "synthetic_share": values["synthetic_share"], "steps": values["steps"],
                          "seconds": values["seconds"]}
    return {"results": out, "workers": shape["num_workers"],
            "device": "cuda" if use_gpu else "cpu"}
