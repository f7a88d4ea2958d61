"""One GAN epoch, shared by every family.

A family hands the loop its generator, discriminator, optimizers, the real batches and a way to
sample the generator's inputs; the loop does the alternating steps with the seeds' tricks:
one-sided label smoothing, label flipping on a schedule, decaying instance noise on fakes, and
the loss (the seeds' cross-entropy, hinge, or Wasserstein with gradient penalty) as data.
Losses are summed on the device and read back once per epoch (no host sync per step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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


def gan_epoch(pair: GanPair, batches: Iterable[torch.Tensor],
              sample_inputs: Callable[[int], tuple[torch.Tensor, ...]],
              tricks: Tricks, epoch: int) -> dict[str, float]:
    """Train one epoch; returns mean D loss, G loss and D accuracy on real and fake rows."""
    G, D = pair.generator, pair.discriminator
    G.train()
    D.train()
    sums = None
    steps = 0
    d_loss_fn, g_loss_fn = LOSSES[tricks.loss]
    flipping = tricks.flip_every > 0 and tricks.flip_fraction > 0 and epoch % tricks.flip_every == 0
    noise_std = tricks.instance_noise / max(epoch, 1)
    for real in batches:
        n, device = real.shape[0], real.device
        fake = G(*sample_inputs(n))

        # Discriminator step.
        fake_for_d = fake.detach()
        if noise_std > 0:
            fake_for_d = fake_for_d + noise_std * torch.randn_like(fake_for_d)
        logits_real, logits_fake = D(real), D(fake_for_d)
        k = logits_real.shape[0]  # fewer than n when D judges packs of rows together
        flip = (torch.rand(2 * k, device=device) < tricks.flip_fraction) if flipping else None
        t_real = _targets(k, tricks.real_label, None if flip is None else flip[:k], device)
        t_fake = _targets(k, 0.0, None if flip is None else flip[k:], device)
        d_loss = d_loss_fn(logits_real, logits_fake, t_real, t_fake)
        if tricks.gradient_penalty:
            d_loss = d_loss + tricks.gradient_penalty * gradient_penalty(D, real, fake_for_d)
        pair.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        pair.d_opt.step()

        # Generator step: rewarded when D calls its rows real.
        g_loss = g_loss_fn(D(fake))
        pair.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        pair.g_opt.step()

        with torch.no_grad():
            step = torch.stack([d_loss.detach(), g_loss.detach(),
                                (logits_real > 0).float().mean(), (logits_fake < 0).float().mean()])
        sums = step if sums is None else sums + step
        steps += 1
    if sums is None:
        raise ValueError("gan_epoch got no batches")
    d_loss, g_loss, acc_real, acc_fake = (sums / steps).tolist()
    return {"loss/d": d_loss, "loss/g": g_loss, "d_acc/real": acc_real, "d_acc/fake": acc_fake,
            "d_acc": (acc_real + acc_fake) / 2}


def shuffled_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator,
                     drop_last: bool = True) -> Iterable[torch.Tensor]:
    """Device-resident data in a fresh random order each epoch, without a DataLoader."""
    order = torch.randperm(data.shape[0], generator=generator).to(data.device)
    stop = data.shape[0] - (data.shape[0] % batch_size if drop_last and data.shape[0] > batch_size else 0)
    for start in range(0, stop, batch_size):
        yield data[order[start:start + batch_size]]
