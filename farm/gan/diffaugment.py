"""Differentiable augmentation (DiffAugment; Zhao et al. 2020, "Differentiable Augmentation for
Data-Efficient GAN Training"), after mit-han-lab/data-efficient-gans' DiffAugment_pytorch.py.

D sees every image, real or generated, through the same random, differentiable transforms, so
it cannot memorise a small training set, and G still gets gradients through them. A policy is
a comma-separated list of the table's names ("color,translation,cutout"); "" is no
augmentation. Every random draw is made on the images' device (no host sync); pass a
`torch.Generator` on that device to repeat the same draws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from farm.infra.errors import ConfigError


def _uniform(x: torch.Tensor, generator) -> torch.Tensor:
    """One U[0, 1) draw per image, shaped to broadcast over [N, C, H, W]."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device, generator=generator)


def _randint(x: torch.Tensor, low: int, high: int, generator) -> torch.Tensor:
    """One integer in [low, high) per image, shaped [N, 1, 1]."""
    return torch.randint(low, high, (x.shape[0], 1, 1), device=x.device, generator=generator)


def _grid(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Image, row and column indices broadcastable to [N, H, W]."""
    n, _, h, w = x.shape
    return (torch.arange(n, device=x.device).view(n, 1, 1),
            torch.arange(h, device=x.device).view(1, h, 1),
            torch.arange(w, device=x.device).view(1, 1, w))


def brightness(x, generator=None):
    """Add one offset in [-0.5, 0.5) per image."""
    return x + (_uniform(x, generator) - 0.5)


def saturation(x, generator=None):
    """Scale each pixel's distance from its grey value by a factor in [0, 2)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def contrast(x, generator=None):
    """Scale each image's distance from its mean by a factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def translation(x, generator=None, ratio: float = 0.125):
    """Shift each image by up to `ratio` of its size in each direction, filling with zeros."""
    h, w = x.shape[2:]
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    batch, rows, cols = _grid(x)
    # Index into a copy padded by one zero pixel; every source outside the image lands on it.
    rows = (rows + _randint(x, -dy, dy + 1, generator) + 1).clamp(0, h + 1)
    cols = (cols + _randint(x, -dx, dx + 1, generator) + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x, generator=None, ratio: float = 0.5):
    """Zero one square of `ratio` of the image's size per image, centred anywhere on it (it
    may hang over the edge)."""
    h, w = x.shape[2:]
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    _, rows, cols = _grid(x)
    top = _randint(x, 0, h + (1 - sh % 2), generator) - sh // 2
    left = _randint(x, 0, w + (1 - sw % 2), generator) - sw // 2
    inside = (rows >= top) & (rows < top + sh) & (cols >= left) & (cols < left + sw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """The policy's names in order; an unknown one is a ConfigError naming the known ones."""
    names = tuple(name.strip() for name in policy.split(",") if name.strip())
    for name in names:
        if name not in AUGMENTATIONS:
            raise ConfigError(f"diffaug: unknown augmentation {name!r} in policy {policy!r}; "
                              f"known: {', '.join(sorted(AUGMENTATIONS))}")
    return names


def diff_augment(x: torch.Tensor, policy: str = "",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Images [N, C, H, W] through the policy's transforms, each drawn afresh per image, in the
    memory layout they came in (channels-last stays so: farm.gan.precision)."""
    layout = torch.channels_last if x.dim() == 4 and not x.is_contiguous() \
        and x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    for name in parse_policy(policy):
        for op in AUGMENTATIONS[name]:
            x = op(x, generator)
    return x.contiguous(memory_format=layout)


class Augmented(nn.Module):
    """A discriminator that sees its images through `diff_augment`: a game calls it like the
    discriminator (extra arguments such as labels pass through), and the pair keeps the bare
    discriminator, so its checkpoints do not change."""

    def __init__(self, discriminator: nn.Module, policy: str):
        super().__init__()
        parse_policy(policy)  # fail when the game is built, not at the first batch
        self.discriminator, self.policy = discriminator, policy

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.discriminator(diff_augment(x, self.policy), *args, **kwargs)


def augmented(discriminator: nn.Module, policy: str) -> nn.Module:
    """The discriminator a game should call: wrapped when the policy asks for anything."""
    return Augmented(discriminator, policy) if parse_policy(policy) else discriminator
