"""One GAN epoch, shared by every family.

A family hands the loop its generator and optimizers, the real batches, and a `Game`: how G's
inputs are drawn and what D and G each minimise. `RealVsFake` is the usual game, with the seeds'
tricks:
one-sided label smoothing, label flipping on a schedule, decaying instance noise on fakes, and
the loss (the seeds' cross-entropy, hinge, or Wasserstein with gradient penalty) as data, plus
the small-data regularisers of D (farm.gan.regularisers: LeCam, consistency), off by default.
Losses are summed on the device and read back once per epoch (no host sync per step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from farm.gan.regularisers import Regularisers


def _bce_d(real, fake, t_real, t_fake):
    return (F.binary_cross_entropy_with_logits(real, t_real)
            + F.binary_cross_entropy_with_logits(fake, t_fake))


# name -> (D loss from real/fake logits and their targets, G loss from D's logits on fakes).
# Targets (smoothing, flipping) only mean something for the cross-entropy loss of the seeds.
LOSSES = {
    "bce": (_bce_d, lambda fake: F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))),
    "hinge": (lambda real, fake, *_: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
              lambda fake: -fake.mean()),
    "wasserstein": (lambda real, fake, *_: fake.mean() - real.mean(), lambda fake: -fake.mean()),
}


@dataclass(frozen=True)
class Tricks:
    """The seeds' stabilisers (all off when left at their defaults) and the loss."""

    real_label: float = 1.0        # one-sided smoothing: real targets become e.g. 0.9
    flip_every: int = 0            # every N epochs (0 = never) ...
    flip_fraction: float = 0.0     # ... this share of D's targets is swapped real <-> fake
    instance_noise: float = 0.0    # std of noise on fakes for D, decaying as noise / epoch
    loss: str = "bce"              # a key of LOSSES
    gradient_penalty: float = 0.0  # WGAN-GP weight on |grad D(interpolate)| - 1, 0 = off


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Gulrajani et al. 2017: keeps the critic 1-Lipschitz along real-fake lines."""
    mix = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    points = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(D(points).sum(), points, create_graph=True)
    return ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()


@dataclass
class GanPair:
    generator: nn.Module
    discriminator: nn.Module
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer


def _targets(n: int, value: float, flip: torch.Tensor | None, device) -> torch.Tensor:
    target = torch.full((n,), value, device=device)
    if flip is not None:
        target = torch.where(flip, 1.0 - target, target)
    return target


def d_accuracy(right_on_real: torch.Tensor, right_on_fake: torch.Tensor) -> dict:
    """D's accuracy on real rows, on fake ones and overall, from where it was right."""
    acc_real, acc_fake = right_on_real.float().mean(), right_on_fake.float().mean()
    return {"d_acc/real": acc_real, "d_acc/fake": acc_fake, "d_acc": (acc_real + acc_fake) / 2}


class Game(Protocol):
    """What a family plays: how G's inputs are drawn and what D and G each minimise.

    `d_loss` gets the generated batch detached; `g_loss` gets it with its graph. Both return
    the loss and a dict of scalar tensors to average over the epoch (read back once).
    """

    def sample(self, n: int) -> tuple[torch.Tensor, ...]: ...

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor, inputs: tuple,
               epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def g_loss(self, real: torch.Tensor, fake: torch.Tensor, inputs: tuple,
               epoch: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...


@dataclass
class RealVsFake:
    """The usual game: D tells real rows from generated ones; G wants its rows called real."""

    D: nn.Module
    sample: Callable[[int], tuple[torch.Tensor, ...]]
    tricks: Tricks = Tricks()
    regularise: Regularisers = field(default_factory=Regularisers)

    def d_loss(self, real, fake, inputs, epoch):
        t = self.tricks
        noise_std = t.instance_noise / max(epoch, 1)
        if noise_std > 0:
            fake = fake + noise_std * torch.randn_like(fake)
        logits_real, logits_fake = self.D(real), self.D(fake)
        k = logits_real.shape[0]  # fewer than the batch when D judges packs of rows together
        flipping = t.flip_every > 0 and t.flip_fraction > 0 and epoch % t.flip_every == 0
        flip = (torch.rand(2 * k, device=real.device) < t.flip_fraction) if flipping else None
        t_real = _targets(k, t.real_label, None if flip is None else flip[:k], real.device)
        t_fake = _targets(k, 0.0, None if flip is None else flip[k:], real.device)
        loss = LOSSES[t.loss][0](logits_real, logits_fake, t_real, t_fake)
        if t.gradient_penalty:
            loss = loss + t.gradient_penalty * gradient_penalty(self.D, real, fake)
        loss, stats = self.regularise(loss, logits_real, logits_fake, real)
        return loss, {**d_accuracy(logits_real > 0, logits_fake < 0), **stats}

    def g_loss(self, real, fake, inputs, epoch):
        return LOSSES[self.tricks.loss][1](self.D(fake)), {}


def gan_epoch(pair: GanPair, batches: Iterable[torch.Tensor], game: Game,
              epoch: int, sync: bool = True) -> dict:
    """Train one epoch of alternating D and G steps; returns the epoch's mean losses and stats,
    as floats, or with `sync=False` as 0-dim tensors left on the device: a per-class image pair
    has one or two steps per epoch, so reading every epoch back would stall the GPU every step
    (the trainable reads a whole window back at once with `read_back`)."""
    pair.generator.train()
    pair.discriminator.train()
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    for real in batches:
        inputs = game.sample(_batch_size(real))
        fake = pair.generator(*inputs)

        d_loss, d_stats = game.d_loss(real, fake.detach(), inputs, epoch)
        pair.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        pair.d_opt.step()

        g_loss, g_stats = game.g_loss(real, fake, inputs, epoch)
        pair.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        pair.g_opt.step()

        with torch.no_grad():
            for key, value in {"loss/d": d_loss, "loss/g": g_loss, **d_stats, **g_stats}.items():
                value = value.detach().float()
                sums[key] = sums[key] + value if key in sums else value
        steps += 1
    if not steps:
        raise ValueError("gan_epoch got no batches")
    means = {key: total / steps for key, total in sums.items()}
    return read_back([means]) if sync else means


def read_back(window: list[dict]) -> dict[str, float]:
    """The mean of each stat over several epochs' on-device means, in one host sync."""
    keys = list(window[0])
    stacked = torch.stack([torch.stack([epoch[k] for k in keys]) for epoch in window])
    return dict(zip(keys, stacked.mean(dim=0).tolist()))


def _batch_size(real) -> int:
    return real[0].shape[0] if isinstance(real, tuple) else real.shape[0]


def shuffled_batches(data, batch_size: int, generator: torch.Generator,
                     drop_last: bool = True) -> Iterable:
    """Device-resident data (a tensor, or a tuple of tensors such as images and labels) in a
    fresh random order each epoch, without a DataLoader."""
    n = _batch_size(data)
    device = data[0].device if isinstance(data, tuple) else data.device
    order = torch.randperm(n, generator=generator).to(device)
    stop = n - (n % batch_size if drop_last and n > batch_size else 0)
    for start in range(0, stop, batch_size):
        index = order[start:start + batch_size]
        yield tuple(part[index] for part in data) if isinstance(data, tuple) else data[index]
