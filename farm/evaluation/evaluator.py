"""The final evaluator: can a classifier learn from what the farm made?

For every image dataset, a fresh classifier (a torchvision ResNet, `trials/evaluator.yaml`) is
trained from scratch on
  * the real train split only        -> the ceiling,
  * each pool of synthetic images     -> CAS, classification accuracy score,
  * real train split + that pool      -> does the farm's output help as augmentation?
  * real train split + as many images of pure noise -> the control every gain is measured beside,
and each is tested on the held-out real test split, which no GAN, judge or epoch choice ever saw.
The last step is tested: nothing is chosen on the test split. Every figure is trained with
`seeds` classifier seeds, and a seed's real + synthetic run is paired with the same seed's
ceiling, so a gain has an interval.

How real + synthetic is trained is `mix` (a reviewer's protocols, as data; `MIXES`):
  * `extra` (default): the real images get exactly the ceiling's schedule (the same batches in
    the same order, the same augmentation draws, the same number of steps); every step adds
    `synthetic_batch` synthetic images on top, never in place of a real one (Azizi et al. 2023).
    The loss is the mean over both, so a real image weighs as a synthetic one does, and without
    `separate_bn` the batch's statistics include the synthetic images;
  * `pretrain`: train on the pool alone (the CAS run at `epochs` passes), then fine-tune on the
    real train split with the ceiling's schedule and a fresh optimizer;
  * `distill`: as `extra`, but each synthetic image's target mixes its requested class with the
    softmax of a teacher trained on the real train split only (that seed's ceiling model);
  * `share`: the earlier protocol, kept for comparison with bench/RESULTS.md: every pass holds
    each real image once and a fresh draw of extras making `synthetic_share` of it.
`separate_bn` gives synthetic images their own batch-norm statistics (Yu et al. 2023); the
tested model uses the real ones. CAS (synthetic only) takes the ceiling's number of steps, or
`cas_epochs` passes' worth where set: a classifier on a pool alone converges sooner.

It runs as one Ray Train job per dataset (`TorchTrainer`): GPU workers when the cluster has GPUs,
CPU workers otherwise; with more than one worker each trains on its shard of every epoch's
shuffled order and DDP averages the gradients. The tasks run one after another inside the job,
so workers start once. Rank 0 tests each model and returns the confusion matrices in the job's
final checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from farm.config.classifiers import EvaluatorConfig
from farm.data.images import label_tensor, to_unit_range
from farm.infra.errors import FarmError
from farm.metrics.paired import spread
from farm.models.classifier import augment, build_model, confusion, scores, steps_per_epoch
from farm.models.precision import autocast_steps, channels_last

RESULTS_FILE = "evaluation.json"
REAL = "real"  # the ceiling's task name; in `distill` it is every seed's teacher
HELD_OUT = "held-out real images"  # what the final figures are tested on: the test split


@dataclass
class Task:
    """One training set: uint8 images [N, H, W, 3] and labels [N]. With `real_count`, the first
    `real_count` images are real and the rest are extras (a pool, or the noise control), which
    join the real ones as the evaluator's `mix` says. `passes`: its step budget in passes over
    the reference images where not the evaluator's `epochs` (CAS's `cas_epochs`)."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    real_count: int | None = None
    passes: int | None = None

    @property
    def has_extras(self) -> bool:
        return self.real_count is not None and self.real_count < len(self.labels)


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
    task (`mix: share`): every real image once and a fresh draw of extras (cycling when there
    are too few) making `share` of the pass, shuffled together. Concatenating instead lets the
    pool's size decide the answer: 3,840 synthetic images beside 768 real ones are 83% of every
    batch (bench/RESULTS.md: such a classifier scored 0.43 where real alone scored 0.59)."""
    if real_count is None or real_count >= n:
        return torch.randperm(n, generator=generator)
    extras = n - real_count
    want = max(1, round(real_count * share / (1 - share)))
    drawn = torch.randperm(extras, generator=generator).repeat(math.ceil(want / extras))[:want]
    both = torch.cat([torch.arange(real_count), real_count + drawn])
    return both[torch.randperm(len(both), generator=generator)]


def step_budget(config: EvaluatorConfig, reference_images: int, world: int = 1,
                passes: int | None = None) -> int:
    """Optimizer steps a classifier of a dataset gets: `epochs` passes (or the task's own
    `passes`) over the real train split. The same for every task that learns from real images,
    so that no task is ahead merely by taking more steps."""
    return max(1, (passes or config.epochs) * steps_per_epoch(math.ceil(reference_images / world),
                                                              config.batch_size))


def index_batches(n: int, budget: int, batch_size: int, generator: torch.Generator,
                  rank: int = 0, world: int = 1, order=None) -> Iterator[torch.Tensor]:
    """`budget` batches of indices into n images: pass after pass in a fresh order (`order(n,
    generator)`, default a permutation), this rank's shard of each. Batches of one are skipped
    (BatchNorm cannot train on them) and do not count."""
    order = order or (lambda size, gen: torch.randperm(size, generator=gen))
    done = 0
    while done < budget:
        mine = shard(order(n, generator), rank, world)
        if steps_per_epoch(len(mine), batch_size) == 0:
            raise ValueError(f"{n} images over {world} worker(s) leave a worker fewer than the "
                             "two a batch-norm step needs")
        take = min(steps_per_epoch(len(mine), batch_size), budget - done)
        for i in range(take):
            yield mine[i * batch_size:(i + 1) * batch_size]
        done += take


def draws(n: int, per_step: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches of `per_step` indices into n extras, every extra once per cycle."""
    pending = torch.empty(0, dtype=torch.long)
    while True:
        while len(pending) < per_step:
            pending = torch.cat([pending, torch.randperm(n, generator=generator)])
        yield pending[:per_step]
        pending = pending[per_step:]


class DualBatchNorm(nn.Module):
    """A batch norm with a second set of statistics and affine for synthetic batches (Yu et
    al. 2023, "Diversify, Don't Fine-Tune"); `main` is what the tested model uses."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.main, self.aux = norm, copy.deepcopy(norm)
        self.synthetic = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.aux if self.synthetic else self.main)(x)


def with_dual_batch_norm(model: nn.Module) -> nn.Module:
    """Every BatchNorm2d of `model` replaced by a `DualBatchNorm` around it."""
    for name, child in model.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, DualBatchNorm(child))
        else:
            with_dual_batch_norm(child)
    return model


@contextlib.contextmanager
def synthetic_statistics(model: nn.Module, on: bool):
    """Inside, a `DualBatchNorm` model normalises with its synthetic statistics."""
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm)] if on else []
    for m in duals:
        m.synthetic = True
    try:
        yield
    finally:
        for m in duals:
            m.synthetic = False


def soft_targets(teacher: nn.Module | None, x: torch.Tensor, labels: torch.Tensor,
                 num_classes: int, weight: float, batch_size: int = 256) -> torch.Tensor:
    """[N, C] targets for extras: the requested class, mixed with the teacher's softmax at
    `weight` (He et al. 2023; Liu, Fusi & Mackey 2019). No teacher: plain one-hot."""
    hard = F.one_hot(labels, num_classes).float()
    if teacher is None or weight == 0:
        return hard
    net = getattr(teacher, "module", teacher)
    net.eval()
    with torch.no_grad():
        probs = torch.cat([net(x[i:i + batch_size]).softmax(1)
                           for i in range(0, len(x), batch_size)])
    return (1 - weight) * hard + weight * probs


# What each random stream of a classifier is for; with the seed and the rank they name it.
ORDER, AUGMENT, DRAWS, EXTRA_AUGMENT = range(4)


def stream(seed: int, purpose: int, rank: int = 0, device="cpu") -> torch.Generator:
    """A generator for one purpose of one classifier seed on one rank, independent of every
    other (seed, purpose, rank): plain offsets such as seed + 1 + rank made classifier seed
    0's augmentation on rank 1 the same stream as seed 1's on rank 0."""
    entropy = np.random.SeedSequence([seed, purpose, rank]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(entropy))


class _Run:
    """One optimizer and cosine schedule over `budget` steps, and the step that trains (laid
    out and rounded as `channels_last` and `autocast` say, as an image trial's GAN steps are)."""

    def __init__(self, model: nn.Module, config: EvaluatorConfig, budget: int):
        self.model, self.config = model, config
        self.layout = channels_last if config.channels_last else (lambda x: x)
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, budget)

    def step(self, xb, yb, aug_gen, extra=None) -> torch.Tensor:
        """One step on a real (or plain) batch, plus `extra` = (images, targets, generator):
        synthetic images on top, in the same batch or through their own statistics."""
        config, model = self.config, self.model
        model.train()
        if config.augment:
            xb = augment(xb, aug_gen)
        xb = self.layout(xb)
        with autocast_steps(config.autocast, xb.device):
            loss = self._loss(xb, yb, extra)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.detach()

    def _loss(self, xb, yb, extra) -> torch.Tensor:
        """The batch's loss: cross-entropy over the real images and the extras alike."""
        config, model = self.config, self.model
        if extra is None:
            loss = F.cross_entropy(model(xb), yb)
        else:
            xe, te, extra_gen = extra
            if config.augment:
                xe = augment(xe, extra_gen)
            xe = self.layout(xe)
            if config.separate_bn:
                with synthetic_statistics(model, True):
                    extra_logits = model(xe)
                logits = model(xb)
            else:
                both = model(torch.cat([xb, xe]))
                logits, extra_logits = both[:len(xb)], both[len(xb):]
            n, m = len(xb), len(xe)
            loss = (F.cross_entropy(logits, yb) * n
                    + F.cross_entropy(extra_logits, te) * m) / (n + m)
        return loss


def train_classifier(task: Task, num_classes: int, config: EvaluatorConfig, device,
                     rank: int = 0, world: int = 1, wrap=lambda m: m, say=print,
                     reference_images: int | None = None,
                     teacher: nn.Module | None = None) -> tuple[nn.Module, int]:
    """Train one classifier on `task` for the dataset's step budget, as `config.mix` says for a
    real + extras task; returns (model, steps). `teacher`: `distill`'s real-only classifier."""
    with torch.random.fork_rng(devices=[]):  # the same initial weights on every rank
        torch.manual_seed(config.seed)
        model = build_model(config.arch, num_classes, config.small_input_stem, config.width)
    if config.separate_bn and task.has_extras:
        model = with_dual_batch_norm(model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = wrap(model.to(device))
    x, y = to_unit_range(task.images, device), label_tensor(task.labels, device)
    real = task.real_count if task.has_extras else len(x)
    budget = step_budget(config, reference_images or real, world, task.passes)
    mix = config.mix if task.has_extras else "plain"
    steps, report_every = 0, max(1, budget // 2)  # a line half-way and one at the end

    def progress(loss):
        if rank == 0 and (steps % report_every == 0 or steps == total):
            say(f"evaluator {task.name} (seed {config.seed}): step {steps}/{total}, "
                f"loss {float(loss):.4f}")

    def schedule(n, order=None):
        """The seed's batches over n images and its augmentation draws: for a plain task (the
        ceiling, CAS) and the real part of every mix alike, so the real images of `extra`
        follow the ceiling exactly (the order is every rank's, so the ranks shard one
        permutation; augmentation is each rank's own)."""
        return (index_batches(n, budget, config.batch_size, stream(config.seed, ORDER), rank,
                              world, order),
                stream(config.seed, AUGMENT, rank, device))

    if mix == "distill" and teacher is None:
        raise ValueError("mix distill needs the real-only teacher: train the real task first")
    total = budget * (2 if mix == "pretrain" else 1)
    if mix == "pretrain":  # the pool alone first: the CAS run (same init and streams) at `epochs`
        run = _Run(model, config, budget)
        xe, ye = x[real:], y[real:]
        batches, aug = schedule(len(xe))
        for idx in batches:
            loss = run.step(xe[idx.to(device)], ye[idx.to(device)], aug)
            steps += 1
            progress(loss)
    run = _Run(model, config, budget)
    if mix == "share":
        batches, aug = schedule(len(x), order=lambda n, gen: pass_order(
            n, real, config.synthetic_share, gen))
    else:
        batches, aug = schedule(real)
    extras = None
    if mix in ("extra", "distill"):
        targets = soft_targets(teacher if mix == "distill" else None, x[real:], y[real:],
                               num_classes, config.distill_weight)
        extras = (x[real:], targets, draws(len(x) - real, config.synthetic_batch,
                                           stream(config.seed, DRAWS, rank)),
                  stream(config.seed, EXTRA_AUGMENT, rank, device))
    for idx in batches:
        idx = idx.to(device)
        extra = None
        if extras is not None:
            xe, te, drawn, extra_gen = extras
            j = next(drawn).to(device)
            extra = (xe[j], te[j], extra_gen)
        loss = run.step(x[idx], y[idx], aug, extra)
        steps += 1
        progress(loss)
    return model, steps


def test_classifier(model: nn.Module, test: Task, num_classes: int, device) -> torch.Tensor:
    """The confusion matrix [true, predicted] on the held-out test images."""
    net = getattr(model, "module", model)  # DDP's wrapped model, for a plain forward
    matrix, _ = confusion(net, to_unit_range(test.images, device),
                          label_tensor(test.labels, device), num_classes)
    return matrix


def tested(model: nn.Module, task: Task, test: Task, num_classes: int, config: EvaluatorConfig,
           device, steps: int, started: float) -> dict:
    """One trained classifier's record: its confusion matrix on the test images, its seed, the
    steps it took and the seconds since `started`."""
    matrix = test_classifier(model, test, num_classes, device)
    return {"matrix": matrix.cpu().tolist(), "seed": config.seed, "steps": steps,
            "train_images": int(len(task.labels)),
            "seconds": round(time.perf_counter() - started, 1)}


def fit_and_test(task: Task, test: Task, num_classes: int, config: EvaluatorConfig, device,
                 rank: int = 0, world: int = 1, wrap=lambda m: m, say=print,
                 reference_images: int | None = None, teacher: nn.Module | None = None) \
        -> dict | None:
    """Train one classifier on ``task`` and test it on ``test`` (rank 0 only; others None).
    ``reference_images``: the real train split's size, which sets the step budget."""
    started = time.perf_counter()
    model, steps = train_classifier(task, num_classes, config, device, rank, world, wrap, say,
                                    reference_images, teacher)
    if rank != 0:
        return None
    return {**tested(model, task, test, num_classes, config, device, steps, started),
            "mix": config.mix if task.has_extras else None,
            "synthetic_share": (config.synthetic_share
                                if task.has_extras and config.mix == "share" else None)}


def seed_configs(config: EvaluatorConfig) -> list[EvaluatorConfig]:
    """One config per classifier seed: seed, seed + 1, ..."""
    return [replace(config, seed=config.seed + i) for i in range(config.seeds)]


def _say(line: str) -> None:
    """A worker's progress line, shown once on the driver. Ray Train sends a plain `print` to
    the root logger and also to the redirected stdout, so every line arrived twice."""
    print(line, file=sys.__stdout__, flush=True)


def _silent(line: str) -> None:
    """Step lines unheard: without --debug a classifier says only its accuracy."""


def _train_loop(loop_config: dict) -> None:
    """The Ray Train worker function: every task in turn, then rank 0's results as a checkpoint."""
    import ray
    import ray.train
    import ray.train.torch

    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    base = EvaluatorConfig(**loop_config["config"])
    test = ray.get(loop_config["test"])
    tasks = [ray.get(ref) for ref in loop_config["tasks"]]
    results: dict[str, list] = {}
    for config in seed_configs(base):
        teacher = None  # this seed's ceiling model, for `distill`
        for task in tasks:
            started = time.perf_counter()
            model, steps = train_classifier(
                task, loop_config["num_classes"], config, device, rank, world,
                wrap=ray.train.torch.prepare_model if world > 1 else (lambda m: m),
                say=_say if loop_config["verbose"] else _silent,
                reference_images=loop_config["reference_images"], teacher=teacher)
            if task.name == REAL:
                teacher = model
            if rank != 0:
                continue
            record = tested(model, task, test, loop_config["num_classes"], config, device, steps,
                            started)
            results.setdefault(task.name, []).append(record)
            acc = scores(record["matrix"], range(loop_config["num_classes"]))["accuracy"]
            _say(f"evaluator {task.name} (seed {config.seed}): accuracy {acc:.3f} on "
                 f"{len(test.labels)} {loop_config['tested_on']}")
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
             storage: str | Path, use_gpu: bool, reference_images: int | None = None,
             verbose: bool = False, tested_on: str = HELD_OUT) -> dict:
    """Run every task of one dataset as one TorchTrainer job, each with every classifier seed;
    {task name: `over_seeds`}. The real task (named `REAL`) must come first: in `distill` it is
    the teacher. Every task's real schedule is `epochs` passes over `reference_images` (the real
    train split; default: the first task's size). Each classifier says its accuracy; `verbose`
    (--debug) adds its step lines and Ray Train's INFO lines (the worker group, the checkpoint).
    `tested_on` names what `test` holds, in the progress lines (the pool choice tests on val)."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    from farm.infra.storage import join, remove

    storage = str(storage)  # a folder, or a URI for a remote experiment
    shape = scaling(config, use_gpu)
    run_name = f"evaluator-{name}"
    remove(join(storage, run_name))  # a rerun trains afresh rather than resuming
    print(f"Evaluator for {name}: {len(tasks)} tasks x {config.seeds} seed(s) ({config.arch}, "
          f"{config.epochs} epochs, mix {config.mix}) on {shape['num_workers']} "
          f"{'GPU' if use_gpu else 'CPU'} worker(s), each tested on {len(test.labels)} "
          f"{tested_on}", flush=True)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"config": asdict(config), "num_classes": len(classes),
                           "reference_images": reference_images or len(tasks[0].labels),
                           "test": ray.put(test), "tasks": [ray.put(t) for t in tasks],
                           "verbose": verbose, "tested_on": tested_on},
        scaling_config=ray.train.ScalingConfig(**shape),
        run_config=ray.train.RunConfig(
            name=run_name, storage_path=storage,
            logging_config=ray.train.LoggingConfig(log_level="INFO" if verbose else "WARNING")),
    )
    try:
        result = trainer.fit()
    except SystemExit as exc:  # Ctrl-C: Ray Train's own handler aborts the job, then exits the
        raise KeyboardInterrupt from exc  # process, silently and with status 1
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's error
        raise FarmError(f"the evaluator job for {name} failed: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
    if result.error is not None or result.checkpoint is None:
        raise FarmError(f"the evaluator job for {name} failed: {result.error}")
    with result.checkpoint.as_directory() as directory:
        raw = json.loads((Path(directory) / RESULTS_FILE).read_text())
    return {"results": {task: over_seeds(runs, classes) for task, runs in raw.items()},
            "workers": shape["num_workers"], "device": "cuda" if use_gpu else "cpu"}


def over_seeds(runs: list[dict], classes) -> dict:
    """One task's figure over its classifier seeds: the mean accuracy, each seed's, their spread;
    per-class recall and the confusion matrix summed over seeds."""
    accuracies = [scores(run["matrix"], classes)["accuracy"] for run in runs]
    summed = np.sum([np.asarray(run["matrix"]) for run in runs], axis=0)
    pooled = scores(summed, classes)
    return {**pooled, "accuracy": float(np.mean(accuracies)), "accuracies": accuracies,
            "spread": spread(accuracies), "seeds": [run["seed"] for run in runs],
            "train_images": runs[0]["train_images"], "steps": runs[0]["steps"],
            "seconds": round(sum(run["seconds"] for run in runs), 1)}
