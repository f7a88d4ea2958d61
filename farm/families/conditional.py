"""`conditional`: one class-conditional model for all classes, built
the way data-efficient conditional GANs are built today rather than as the fruit report did.

G: conditional batch norm (per-class gain and bias) in a residual upsampling stack to the
data's image size. D: spectral norm everywhere and a projection head, trained with the hinge
loss. D sees real and generated images through DiffAugment (`diffaug`). What is evaluated,
exported and pictured is an exponential moving average of G's weights (`EMAGenerator`: its
eval mode), and it is scored, exported and pictured exactly like `spiked` (KID and judge
accuracy per class and their means; one grid row per class).

For a few dozen images a class, three published regularisers are settings, all off by default
(farm.gan.regularisers has the sources): `lecam` (LeCam's bound on D's outputs),
`consistency` (D's score of a real image kept under `consistency_augment`), and transitional
conditioning (`transition_start`, `transition_end`: the class blended in over those G steps).
Settings: ConditionalParams (farm/config/family_params.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from farm.config.family_params import ConditionalParams
from farm.data.trial_data import ImageData
from farm.families.spiked import SpikedGame
from farm.gan.diffaugment import augmented
from farm.gan.ema import EMAGenerator, follow
from farm.gan.gan_loop import LOSSES, GanPair, d_accuracy
from farm.gan.regularisers import Regularisers, keep_lecam, regularisers, transition
from farm.models.conditional import ConditionalGenerator, ProjectionDiscriminator

HINGE_D, HINGE_G = LOSSES["hinge"]


def build(params: ConditionalParams, data: ImageData, device) -> GanPair:
    classes, size = len(data.classes), data.images.shape[1]
    G = EMAGenerator(ConditionalGenerator(classes, params.z_dim, params.g_width, size),
                     params.ema_decay, params.ema_start).to(device)
    D = ProjectionDiscriminator(classes, params.d_width, size).to(device)
    betas = (params.beta1, params.beta2)
    if params.lecam:
        keep_lecam(D)
    g_opt = torch.optim.Adam(G.raw.parameters(), params.lr_g, betas=betas)
    follow(G, g_opt)
    if params.transition_end:  # after `follow`, whose hook counts the steps it reads
        transition(G, params.transition_start, params.transition_end, g_opt, G, D)
    return GanPair(G, D, g_opt, torch.optim.Adam(D.parameters(), params.lr_d, betas=betas))


@dataclass
class ProjectionGame(SpikedGame):
    """Hinge loss on D(x, y): real images with their labels, generated ones with the labels
    they were asked for, plus the regularisers that are on. Inputs are drawn as for `spiked`:
    noise and a random class each."""

    regularise: Regularisers = field(default_factory=Regularisers)

    def d_loss(self, real, fake, inputs, epoch):
        images, labels = real
        out_real, out_fake = self.D(images, labels), self.D(fake, inputs[1])
        loss, stats = self.regularise(HINGE_D(out_real, out_fake), out_real, out_fake,
                                      images, labels)
        return loss, {**d_accuracy(out_real > 0, out_fake < 0), **stats}

    def g_loss(self, real, fake, inputs, epoch):
        return HINGE_G(self.D(fake, inputs[1])), {}


def game(params: ConditionalParams, data: ImageData, pair: GanPair, device) -> ProjectionGame:
    return ProjectionGame(pair.generator, augmented(pair.discriminator, params.diffaug),
                          len(data.classes), device,
                          regularisers(pair.discriminator, params.lecam, params.consistency,
                                       params.consistency_augment))
