"""`fruit-pairs`: the fruit report's one G/D pair per class. D tells the
class's real train images from generated ones; with `diffaug` set it sees both through
DiffAugment (farm.gan.diffaugment), with `lecam` LeCam's regulariser holds its outputs, and with
`ema_decay` what is evaluated, exported and pictured is an average of G's weights.

With `shared_start` every class's pair begins from one pair grown first on all classes' fit
images (`grow_start`, once per setting and seed, in the driver: farm/pipeline/shared_starts.py):
on about 20 images a class, a pair grown from scratch collapses within a few hundred steps
before its pictures look like its class, and one fine-tuned from a pair that already draws
fruit does not (bench/RESULTS.md, "Pairs from a shared start").

Data: one class of the dataset (`ClassView`). Models: farm.models.images (G1, G2, G2a; D34,
DCGAN). Metric: KID to the class's real train images in the judge's feature space, judge
accuracy, diversity and usefulness on the val slice (farm/families/image_common.py).
Settings: ImageParams (farm/config/family_params.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from farm.config.family_params import ImageParams
from farm.data.trial_data import ImageData
from farm.families.image_common import (discriminator_for, generate, grid, judge_for, pair_on,
                                        score_class, scored_draw, to_uint8, useful_scores)
from farm.gan.diffaugment import augmented
from farm.gan.ema import EMAGenerator
from farm.gan.gan_loop import GanPair, RealVsFake, Tricks, gan_epoch, shuffled_batches
from farm.gan.precision import StepPrecision
from farm.gan.regularisers import keep_lecam, regularisers
from farm.models.images import GENERATORS, noise_for


@dataclass
class ClassView:
    """A fruit-pairs trial's view of the data: one class of it, and the shared start its pair
    fine-tunes from (`start_key`; None when it grows from scratch)."""

    data: ImageData
    label: int
    start_key: str | None = None


def class_view(data: ImageData, spec: dict) -> ClassView:
    return ClassView(data, data.classes.index(spec["class"]), start_key(spec))


def start_key(spec: dict) -> str | None:
    """The shared start a trial begins from: one per family, dataset, setting and seed (the
    trial's tag holds the setting and the seed's repeat), whatever its class; None without
    `shared_start`."""
    if not int((spec.get("params") or {}).get("shared_start", 0)):
        return None
    return f"{spec['family']}|{spec['dataset']}|{spec['tag']}"


def grow_start(params: ImageParams, data: ImageData, seed: int, device,
               say=lambda line: None) -> dict:
    """One pair of the setting grown for `params.shared_start` epochs on every class's fit
    images (never the val slice): its weights, {"generator", "discriminator"}, for each
    class's pair to begin from, and "samples", a uint8 grid [3, H, W] of what it draws."""
    torch.manual_seed(seed)
    view = ClassView(data, 0)
    pair = build(params, view, device)
    precision = StepPrecision.of(params)
    precision.lay_out(pair)
    play = game(params, view, pair, device)
    rows = precision.rows(data.tensor(np.arange(len(data.labels)), device))
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, params.shared_start + 1):
        with precision.steps(device):
            gan_epoch(pair, shuffled_batches(rows, params.batch_size, order), play, epoch,
                      sync=False)
        if epoch % 10 == 0 or epoch == params.shared_start:
            say(f"epoch {epoch}/{params.shared_start}")
    samples = grid(generate(pair.generator, params.grid_images, seed), rows=1)
    return {"generator": pair.generator.state_dict(),
            "discriminator": pair.discriminator.state_dict(),
            "samples": torch.from_numpy(samples).mul(255).round().to(torch.uint8)}


def begin(pair: GanPair, view: ClassView) -> None:
    """A fresh trial's first weights: its setting's shared start, where it has one (all of
    G's and D's state, an EMA generator's average and LeCam's averages included; not the
    optimizers' moments). The EMA's step count comes with it, past `ema_start`, so a
    fine-tuning pair averages from the start's average at once, with no plain-copy warm-up."""
    if view.start_key is None:
        return
    start = view.data.starts.get(view.start_key)
    if start is None:
        raise RuntimeError(f"no shared start {view.start_key!r} was grown for this trial "
                           "(farm/pipeline/shared_starts.py grows them before the trials)")
    pair.generator.load_state_dict(start["generator"])
    pair.discriminator.load_state_dict(start["discriminator"])


def build(params: ImageParams, view: ClassView, device) -> GanPair:
    """The report's pair; with `ema_decay` its G is wrapped in an EMAGenerator (the average is
    what evaluation, export and pictures sample), with `lecam` D keeps LeCam's averages."""
    G = GENERATORS[params.generator](width=params.g_width)
    if params.ema_decay:
        G = EMAGenerator(G, params.ema_decay, params.ema_start)
    D = discriminator_for(params, 1)
    if params.lecam:
        keep_lecam(D)
    return pair_on(params, G, D, device)


def game(params: ImageParams, view: ClassView, pair: GanPair, device) -> RealVsFake:
    return RealVsFake(augmented(pair.discriminator, params.diffaug),
                      lambda n: (noise_for(pair.generator, n, device),),
                      Tricks(real_label=params.real_label, loss=params.loss),
                      regularisers(pair.discriminator, params.lecam))


def real_rows(view: ClassView, device) -> torch.Tensor:
    """The class's train images, resident on the trial's device for the whole run."""
    return view.data.tensor(np.flatnonzero(view.data.labels == view.label), device)


def evaluate(G, params: ImageParams, view: ClassView, seed: int) -> dict:
    judge = judge_for(view.data, next(G.parameters()).device)
    fake = scored_draw(G, params, params.eval_images, seed)
    scores, features = score_class(judge, fake, view.data.real_features[view.label], view.label,
                                   params, seed)
    return {**scores, **useful_scores(view.data, {view.label: features})}


def export(G, params: ImageParams, view: ClassView, n: int, seed: int) -> dict:
    """{class name: uint8 [n, H, W, 3]} for the ImageFolder export."""
    return {view.data.classes[view.label]: to_uint8(generate(G, n, seed))}


def pictures(G, params: ImageParams, view: ClassView, seed: int) -> dict:
    return {"samples": grid(generate(G, params.grid_images, seed), rows=1)}
