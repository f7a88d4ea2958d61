"""`fruit-pairs`: the fruit report's one G/D pair per class. D tells the
class's real train images from generated ones; with `diffaug` set it sees both through
DiffAugment (farm.gan.diffaugment), with `lecam` LeCam's regulariser holds its outputs, and with
`ema_decay` what is evaluated, exported and pictured is an average of G's weights.

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
                                        score_class, to_uint8, useful_scores)
from farm.gan.diffaugment import augmented
from farm.gan.ema import EMAGenerator
from farm.gan.gan_loop import GanPair, RealVsFake, Tricks
from farm.gan.regularisers import keep_lecam, regularisers
from farm.models.images import GENERATORS, noise_for


@dataclass
class ClassView:
    """A fruit-pairs trial's view of the data: one class of it."""

    data: ImageData
    label: int


def class_view(data: ImageData, spec: dict) -> ClassView:
    return ClassView(data, data.classes.index(spec["class"]))


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
    fake = generate(G, params.eval_images, seed)
    scores, features = score_class(judge, fake, view.data.real_features[view.label], view.label,
                                   params, seed)
    return {**scores, **useful_scores(view.data, {view.label: features})}


def export(G, params: ImageParams, view: ClassView, n: int, seed: int) -> dict:
    """{class name: uint8 [n, H, W, 3]} for the ImageFolder export."""
    return {view.data.classes[view.label]: to_uint8(generate(G, n, seed))}


def pictures(G, params: ImageParams, view: ClassView, seed: int) -> dict:
    return {"samples": grid(generate(G, params.grid_images, seed), rows=1)}
