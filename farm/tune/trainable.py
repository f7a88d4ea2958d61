"""The Ray Tune trainable every family runs: a plain function of its trial config.

It trains epoch after epoch with the shared GAN loop, and every `eval_every` epochs reports the
family's metrics together with a checkpoint; Tune's CheckpointConfig keeps the best ones by the
family's selection metric (also reported as `select/rank`, lower is better in every family).
Resumes from `tune.get_checkpoint()` after a failure, or from a donor's weights after a PBT
exploit (farm.tune.schedulers).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from ray import tune

from farm.config.family_params import params_from
from farm.families.kinds import kind_of
from farm.gan.checkpoint import load_state, random_streams, restore, save_state
from farm.gan.gan_loop import gan_epoch, read_back, shuffled_batches
from farm.gan.precision import StepPrecision
from farm.tune.gang import is_gang, train_gang
from farm.tune.schedulers import RANK, SMOOTHED, select_rank, smoothed


def trial_device() -> torch.device:
    """The GPU Ray gave this trial, if any; CPU otherwise (CI and laptops)."""
    import ray

    if torch.cuda.is_available() and ray.get_gpu_ids():
        return torch.device("cuda")
    return torch.device("cpu")


def log_pictures(writer, pictures: dict, epoch: int):
    """Figures into the trial's folder (Ray syncs it to storage), beside Tune's own scalars."""
    if not pictures:
        return writer
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(tune.get_context().get_trial_dir())
    for name, picture in pictures.items():
        if hasattr(picture, "savefig"):  # a matplotlib figure
            writer.add_figure(name, picture, global_step=epoch, close=True)
        else:  # an image array [3, H, W] in [0, 1]
            writer.add_image(name, picture, global_step=epoch)
    writer.flush()
    return writer


def train_gan(config: dict, datasets: dict) -> None:
    """Ray Tune function trainable; `config["trial"]` is one planned trial (farm.config.plan),
    or a gang of them (farm.tune.gang)."""
    spec = config["trial"]
    if is_gang(spec):  # trials of one shape grown as one stacked model
        return train_gang(config, datasets, trial_device())
    kind = kind_of(spec["kind"])
    params = params_from(spec["kind"], spec["params"])
    data = kind.view(datasets[spec["dataset"]], spec)
    seed = int(spec["seed"])
    torch.manual_seed(seed)
    device = trial_device()
    pair = kind.build(params, data, device)
    game = kind.game(params, data, pair, device)  # before a checkpoint loads: it may warm D up
    start, state = 1, None
    history: list[float] = []  # the selection metric at each evaluation, for a scheduler
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            state = load_state(directory, device)
        restore(state, pair, game)
        start = state["epoch"] + 1
        history = list(state.get("history", []))
    else:
        kind.begin(pair, data)  # a family's shared start, where it has one
    order = random_streams(state, seed, start)
    precision = StepPrecision.of(params)
    precision.lay_out(pair)

    real = precision.rows(kind.real_rows(data, device))
    window: list[dict] = []
    select = spec["select"]["metric"]
    scheduler = spec.get("scheduler") or {}
    smoothing = int(scheduler.get("smoothing", 1)) if scheduler else 0
    writer = None
    tick = time.perf_counter()
    for epoch in range(start, spec["epochs"] + 1):
        if kind.epoch is not None:  # a family grown without GAN steps
            window.append(kind.epoch(pair, game, epoch))
        else:
            batches = shuffled_batches(real, params.batch_size, order)
            with precision.steps(device):
                window.append(gan_epoch(pair, batches, game, epoch, sync=False))
        if epoch % spec["eval_every"] and epoch != spec["epochs"]:
            continue
        train_seconds = time.perf_counter() - tick
        metrics = read_back(window)  # the window's one host sync
        metrics.update(kind.evaluate(pair.generator, params, data, seed))
        metrics.update(epoch=epoch, epoch_seconds=train_seconds / len(window))
        if select in metrics:
            metrics[RANK] = select_rank(metrics, spec["select"])
            if smoothing:
                history.append(float(metrics[select]))
                metrics[SMOOTHED] = smoothed(history, smoothing)
        writer = log_pictures(writer, kind.pictures(pair.generator, params, data, seed), epoch)
        with tempfile.TemporaryDirectory() as directory:
            save_state(Path(directory), pair, epoch, history, game, order, seed)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
        window = []
        tick = time.perf_counter()
