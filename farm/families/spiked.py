"""`spiked`: the fruit report's one conditional model for all classes. The
class is a spike in G's noise (entry k of G1's vector set to s, or column k of G2/G2a's plane set
to ones), and D has one output per class plus one for "fake"; with `diffaug` set it sees real
and generated images through DiffAugment (farm.gan.diffaugment).

Data: every class of the dataset. Models: farm.models.images. Metric: per class, KID to its
real train images in the judge's feature space, judge accuracy and diversity, their means, and
usefulness on the val slice (farm/families/image_common.py). `conditional` is scored, exported
and pictured by the functions here too. Settings: ImageParams (farm/config/family_params.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from farm.config.family_params import ImageParams
from farm.data.images import label_tensor
from farm.data.trial_data import ImageData
from farm.families.image_common import (discriminator_for, generate, grid, judge_for, pair_on,
                                        score_class, scored_draw, to_uint8, useful_scores)
from farm.gan.diffaugment import augmented
from farm.gan.gan_loop import GanPair, d_accuracy
from farm.models.images import GENERATORS, noise_for


def build(params: ImageParams, data: ImageData, device) -> GanPair:
    kwargs = {"spike_value": params.spike_value} if params.generator == "G1" else {}
    G = GENERATORS[params.generator](width=params.g_width, cond_classes=len(data.classes), **kwargs)
    return pair_on(params, G, discriminator_for(params, len(data.classes) + 1), device)


def real_rows(data: ImageData, device) -> tuple[torch.Tensor, torch.Tensor]:
    return data.tensor(slice(None), device), label_tensor(data.labels, device)


@dataclass
class SpikedGame:
    """D: real images to their class, generated ones to "fake" (the last output).
    G: rewarded when D puts its image in the class it was asked for."""

    G: torch.nn.Module
    D: torch.nn.Module
    classes: int
    device: torch.device

    def sample(self, n):
        labels = torch.randint(self.classes, (n,), device=self.device)
        return noise_for(self.G, n, self.device), labels

    def d_loss(self, real, fake, inputs, epoch):
        images, labels = real
        logits_real, logits_fake = self.D(images), self.D(fake)
        fake_class = torch.full((fake.shape[0],), self.classes, device=fake.device)
        loss = F.cross_entropy(logits_real, labels) + F.cross_entropy(logits_fake, fake_class)
        return loss, d_accuracy(logits_real.argmax(1) == labels,
                                logits_fake.argmax(1) == self.classes)

    def g_loss(self, real, fake, inputs, epoch):
        _, labels = inputs
        return F.cross_entropy(self.D(fake), labels), {}


def game(params, data, pair, device) -> SpikedGame:
    return SpikedGame(pair.generator, augmented(pair.discriminator, params.diffaug),
                      len(data.classes), device)


def evaluate(G, params: ImageParams, data: ImageData, seed: int) -> dict:
    judge = judge_for(data, next(G.parameters()).device)
    metrics, generated = {}, {}
    for label, name in enumerate(data.classes):
        fake = scored_draw(G, params, params.eval_images, seed + label, label)
        scores, generated[label] = score_class(judge, fake, data.real_features[label], label,
                                               params, seed)
        metrics.update({f"{key}/{name}": value for key, value in scores.items()})
    metrics.update(useful_scores(data, generated))

    def mean(key: str) -> float:
        return float(np.mean([metrics[f"{key}/{c}"] for c in data.classes]))

    metrics.update({"kid/mean": mean("kid"), "judge_accuracy/mean": mean("judge_accuracy"),
                    "diversity/mean": mean("diversity")})
    return metrics


def export(G, params: ImageParams, data: ImageData, n: int, seed: int) -> dict:
    return {name: to_uint8(generate(G, n, seed + label, label))
            for label, name in enumerate(data.classes)}


def pictures(G, params: ImageParams, data: ImageData, seed: int) -> dict:
    rows = [generate(G, params.grid_images, seed + label, label)
            for label in range(len(data.classes))]
    return {"samples_by_class": grid(torch.cat(rows), rows=len(rows))}
