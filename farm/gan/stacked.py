"""The GAN step for a gang: M trials of one shape trained as one stacked model.

The same alternating D and G steps as farm.gan.gan_loop, on [M, rows, features] batches (each
member its own rows in its own order), with the seeds' tricks and losses taken per member. The
members' losses are summed, never averaged, so each member's gradient is the one it would get
alone; `StackedAdam` then steps each member with its own learning rates. Stats come back as
[M] vectors, one value per member, read back once per evaluation window.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from torch.optim.adam import adam as adam_kernel

from farm.gan.gan_loop import GanPair, Tricks
from farm.models.stacked import member_state, stack


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(-1)


# name -> (members' D losses [M] from logits [M, k] and targets, their G losses [M]): the
# per-member means of farm.gan.gan_loop.LOSSES.
STACKED_LOSSES = {
    "bce": (lambda real, fake, t_real, t_fake: _bce(real, t_real) + _bce(fake, t_fake),
            lambda fake: _bce(fake, torch.ones_like(fake))),
    "hinge": (lambda real, fake, *_: F.relu(1 - real).mean(-1) + F.relu(1 + fake).mean(-1),
              lambda fake: -fake.mean(-1)),
    "wasserstein": (lambda real, fake, *_: fake.mean(-1) - real.mean(-1),
                    lambda fake: -fake.mean(-1)),
}


def stacked_gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor) \
        -> torch.Tensor:
    """Each member's WGAN-GP term [M]: one mixing weight per row, its own critic's gradient."""
    mix = torch.rand(*real.shape[:2], 1, device=real.device)
    points = (mix * real + (1 - mix) * fake).requires_grad_(True)
    grads, = torch.autograd.grad(D(points).sum(), points, create_graph=True)
    return ((grads.norm(dim=-1) - 1) ** 2).mean(-1)


@dataclass
class StackedRealVsFake:
    """farm.gan.gan_loop.RealVsFake for a gang (its tricks; no small-data regularisers)."""

    D: nn.Module
    sample: Callable[[int], tuple[torch.Tensor, ...]]  # rows per member -> G's stacked inputs
    tricks: Tricks = Tricks()

    def d_loss(self, real, fake, inputs, epoch):
        t = self.tricks
        noise_std = t.instance_noise / max(epoch, 1)
        if noise_std > 0:
            fake = fake + noise_std * torch.randn_like(fake)
        logits_real, logits_fake = self.D(real), self.D(fake)  # [M, k]
        t_real = torch.full_like(logits_real, t.real_label)
        t_fake = torch.zeros_like(logits_fake)
        if t.flip_every > 0 and t.flip_fraction > 0 and epoch % t.flip_every == 0:
            flip_real = torch.rand_like(t_real) < t.flip_fraction
            flip_fake = torch.rand_like(t_fake) < t.flip_fraction
            t_real = torch.where(flip_real, 1.0 - t_real, t_real)
            t_fake = torch.where(flip_fake, 1.0 - t_fake, t_fake)
        losses = STACKED_LOSSES[t.loss][0](logits_real, logits_fake, t_real, t_fake)
        if t.gradient_penalty:
            losses = losses + t.gradient_penalty * stacked_gradient_penalty(self.D, real, fake)
        acc_real = (logits_real > 0).float().mean(-1)
        acc_fake = (logits_fake < 0).float().mean(-1)
        return losses, {"d_acc/real": acc_real, "d_acc/fake": acc_fake,
                        "d_acc": (acc_real + acc_fake) / 2}

    def g_loss(self, real, fake, inputs, epoch):
        return STACKED_LOSSES[self.tricks.loss][1](self.D(fake)), {}


class StackedAdam:
    """Adam over stacked parameters with one learning rate per member (the members of a gang may
    differ in their rates): torch's fused Adam kernel (torch.optim.Adam(fused=True)'s, through
    the functional torch.optim.adam.adam) once per distinct rate, on the stacked tensors
    themselves when every member shares one rate and on each member's slices otherwise. No
    weight decay or amsgrad, as the farm's Adam has none. Gradients are zeroed in place, never
    dropped, so the slices handed to the kernel are made once."""

    def __init__(self, params: Iterable[nn.Parameter], rates: Sequence[float],
                 betas: tuple[float, float], eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.rates = [float(r) for r in rates]
        self.betas, self.eps = betas, eps
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.grads = [torch.zeros_like(p) for p in self.params]
        for p, grad in zip(self.params, self.grads):
            p.grad = grad
        groups: dict[float, list[int]] = {}
        for member, rate in enumerate(self.rates):
            groups.setdefault(rate, []).append(member)
        whole = len(groups) == 1
        self._calls = []  # (rate, params, grads, averages, squares, steps) per kernel call
        for rate, members in groups.items():
            def part(tensors, members=members):
                return list(tensors) if whole else [t[i] for t in tensors for i in members]
            parts = [part([p.detach() for p in self.params]), part(self.grads),
                     part(self.exp_avg), part(self.exp_avg_sq)]
            # the step counts live beside the weights, as torch.optim.Adam(fused=True) keeps them
            steps = [torch.zeros((), device=t.device) for t in parts[0]]
            self._calls.append((rate, *parts, steps))

    @property
    def step_count(self) -> int:
        return int(self._calls[0][5][0].item())

    def zero_grad(self) -> None:
        """In place: the kernel's slices of the gradients stay valid."""
        for p in self.params:
            p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        if any(p.grad is not grad for p, grad in zip(self.params, self.grads)):
            raise RuntimeError("StackedAdam: a gradient was replaced, not accumulated in place")
        for rate, params, grads, averages, squares, steps in self._calls:
            adam_kernel(params, grads, averages, squares, [], steps, fused=True,
                        amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=rate,
                        weight_decay=0.0, eps=self.eps, maximize=False)

    def state_dict(self) -> dict:
        return {"step": self.step_count, "exp_avg": [t.clone() for t in self.exp_avg],
                "exp_avg_sq": [t.clone() for t in self.exp_avg_sq]}

    def load_state_dict(self, state: dict) -> None:
        for own, saved in zip(self.exp_avg + self.exp_avg_sq,
                              state["exp_avg"] + state["exp_avg_sq"]):
            own.copy_(saved)
        for call in self._calls:
            for step in call[5]:
                step.fill_(float(state["step"]))


def stack_pairs(pairs: Sequence[GanPair], rates_g: Sequence[float], rates_d: Sequence[float],
                betas: tuple[float, float]) -> GanPair:
    """One stacked pair from the members' own (each built as its trial alone builds it), with
    each member's learning rates."""
    G = stack([p.generator for p in pairs])
    D = stack([p.discriminator for p in pairs])
    return GanPair(G, D, StackedAdam(G.parameters(), rates_g, betas),
                   StackedAdam(D.parameters(), rates_d, betas))


def member_weights(pair: GanPair, index: int) -> tuple[dict, dict]:
    """Member `index`'s generator and discriminator as ordinary state dicts."""
    return member_state(pair.generator, index), member_state(pair.discriminator, index)


def stacked_batches(rows: torch.Tensor, members: int, batch_size: int,
                    orders: Sequence[torch.Generator]) -> Iterable[torch.Tensor]:
    """[M, batch, features] batches: each member's rows in its own fresh order each epoch (its
    own generator), as farm.gan.gan_loop.shuffled_batches gives a trial alone."""
    n = rows.shape[0]
    order = torch.stack([torch.randperm(n, generator=g) for g in orders[:members]])
    order = order.to(rows.device)
    stop = n - (n % batch_size if n > batch_size else 0)
    for start in range(0, stop, batch_size):
        yield rows[order[:, start:start + batch_size]]


def stacked_epoch(pair: GanPair, batches: Iterable[torch.Tensor], game: StackedRealVsFake,
                  epoch: int) -> dict[str, torch.Tensor]:
    """One epoch of a gang; the members' mean losses and stats as [M] tensors on the device."""
    pair.generator.train()
    pair.discriminator.train()
    sums: dict[str, torch.Tensor] = {}
    steps = 0
    for real in batches:
        inputs = game.sample(real.shape[1])
        fake = pair.generator(*inputs)

        d_losses, d_stats = game.d_loss(real, fake.detach(), inputs, epoch)
        pair.d_opt.zero_grad()
        d_losses.sum().backward()
        pair.d_opt.step()

        g_losses, g_stats = game.g_loss(real, fake, inputs, epoch)
        pair.g_opt.zero_grad()
        g_losses.sum().backward()
        pair.g_opt.step()

        with torch.no_grad():
            for key, value in {"loss/d": d_losses, "loss/g": g_losses, **d_stats,
                               **g_stats}.items():
                value = value.detach().float()
                sums[key] = sums[key] + value if key in sums else value
        steps += 1
    if not steps:
        raise ValueError("stacked_epoch got no batches")
    return {key: total / steps for key, total in sums.items()}


def read_back_members(window: list[dict[str, torch.Tensor]]) -> list[dict[str, float]]:
    """Each member's mean of each stat over a window of epochs, in one host sync."""
    keys = list(window[0])
    stacked = torch.stack([torch.stack([epoch[k] for k in keys]) for epoch in window])  # [E,K,M]
    means = stacked.mean(dim=0).T.tolist()  # [M][K]
    return [dict(zip(keys, row)) for row in means]
