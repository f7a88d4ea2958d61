"""One GAN epoch, shared by every family.

A family hands the loop its generator, discriminator, optimizers, the real batches and a way to
sample the generator's inputs; the loop does the alternating steps with the seeds' tricks:
one-sided label smoothing, label flipping on a schedule, decaying instance noise on fakes.
Losses are summed on the device and read back once per epoch (no host sync per step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Tricks:
    """The seeds' stabilisers, all off when left at their defaults."""

    real_label: float = 1.0        # one-sided smoothing: real targets become e.g. 0.9
    flip_every: int = 0            # every N epochs (0 = never) ...
    flip_fraction: float = 0.0     # ... this share of D's targets is swapped real <-> fake
    instance_noise: float = 0.0    # std of noise on fakes for D, decaying as noise / epoch


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
        flip = (torch.rand(2 * n, device=device) < tricks.flip_fraction) if flipping else None
        t_real = _targets(n, tricks.real_label, None if flip is None else flip[:n], device)
        t_fake = _targets(n, 0.0, None if flip is None else flip[n:], device)
        d_loss = (F.binary_cross_entropy_with_logits(logits_real, t_real)
                  + F.binary_cross_entropy_with_logits(logits_fake, t_fake))
        pair.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        pair.d_opt.step()

        # Generator step: rewarded when D calls its rows real.
        logits_g = D(fake)
        g_loss = F.binary_cross_entropy_with_logits(logits_g, torch.ones_like(logits_g))
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
