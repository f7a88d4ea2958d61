"""The class-conditional networks (images in [-1, 1], NCHW, square, 8 to 128+ pixels a side).

Generator: noise to a 4x4 map, then residual upsampling blocks whose batch norms take their
gain and bias per class from an embedding (conditional batch norm: de Vries et al. 2017, as in
Miyato & Koyama 2018 and BigGAN), doubling the size to the data's, then a tanh.
Discriminator: residual downsampling blocks to 4x4, ReLU, global sum pooling, and a
projection head, out = linear(h) + <embed(y), h> (Miyato & Koyama 2018), with spectral
normalisation (Miyato et al. 2018) on every convolution, linear layer and the embedding.

Both scale their use of the class by a `condition_weight` buffer (transitional conditioning,
Shahbazi et al. 2022; farm.gan.regularisers sets it): G's batch norms blend from gain 1, bias
0 to the class's own, D's projection term is multiplied by it. At its default 1 (fully
conditional) both compute exactly what they did before the buffer existed, and checkpoints
from then, which lack it, load as 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

MAX_WIDTH = 8  # channels stop growing at 8 x width (the 4x4 end of either network)


def blocks_for(size: int) -> int:
    """Doublings between the 4x4 map and a `size` x `size` image."""
    blocks = int(math.log2(size // 4)) if size >= 8 else 0
    if blocks < 1 or 4 * 2 ** blocks != size:
        raise ValueError(f"image size {size} must be 4 x a power of two, at least 8 (32, 64...)")
    return blocks


def widths(width: int, blocks: int) -> list[int]:
    """Channels at each of the blocks + 1 resolutions, largest image first."""
    return [width * min(2 ** i, MAX_WIDTH) for i in range(blocks + 1)]


def _xavier(module: nn.Module) -> None:
    nn.init.xavier_uniform_(module.weight)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def _init(module: nn.Module) -> None:
    """G's convolutions and linear layer (its class embeddings keep their gain 1, bias 0)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        _xavier(module)


def _sn(module: nn.Module) -> nn.Module:
    _xavier(module)
    return spectral_norm(module)


class _Transitional(nn.Module):
    """A model with a `condition_weight` buffer, 1 unless transitional conditioning sets it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("condition_weight", torch.ones(()))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a checkpoint from before the buffer existed was fully conditional
        state_dict.setdefault(prefix + "condition_weight", torch.ones(()))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm without its own affine; the gain and bias come from the label's embedding
    rows (gain starts at 1, bias at 0), blended in by `weight` (lerp is exact at weight 1)."""

    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(classes, channels)
        self.bias = nn.Embedding(classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        gain, bias = self.gain(labels), self.bias(labels)
        gain, bias = torch.lerp(torch.ones_like(gain), gain, weight), weight * bias
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]


class UpBlock(nn.Module):
    """BN(y), ReLU, upsample x2, conv 3x3, BN(y), ReLU, conv 3x3; plus upsample, conv 1x1."""

    def __init__(self, a: int, b: int, classes: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm2d(a, classes), ConditionalBatchNorm2d(b, classes)
        self.conv1, self.conv2 = nn.Conv2d(a, b, 3, 1, 1), nn.Conv2d(b, b, 3, 1, 1)
        self.skip = nn.Conv2d(a, b, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor,
                weight: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels, weight)), scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels, weight)))
        return h + self.skip(F.interpolate(x, scale_factor=2))


class ConditionalGenerator(_Transitional):
    """G(z, y): z [N, z_dim] and class labels [N] to images [N, 3, size, size] in [-1, 1]."""

    def __init__(self, classes: int, z_dim: int = 128, width: int = 64, size: int = 64):
        super().__init__()
        self.cond_classes, self.noise_shape = classes, (z_dim,)
        chans = widths(width, blocks_for(size))[::-1]
        self.linear = nn.Linear(z_dim, chans[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(a, b, classes) for a, b in zip(chans, chans[1:]))
        self.out = nn.Sequential(nn.BatchNorm2d(chans[-1]), nn.ReLU(),
                                 nn.Conv2d(chans[-1], 3, 3, 1, 1), nn.Tanh())
        self.apply(_init)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.linear(z.flatten(1)).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            h = block(h, labels, self.condition_weight)
        return self.out(h)


class DownBlock(nn.Module):
    """(ReLU,) conv 3x3, ReLU, conv 3x3, average-pool x2; plus conv 1x1 and pool. The first
    block takes raw pixels: no ReLU in front, and it pools before its 1x1 conv (SNGAN)."""

    def __init__(self, a: int, b: int, first: bool):
        super().__init__()
        self.first = first
        self.conv1, self.conv2 = _sn(nn.Conv2d(a, b, 3, 1, 1)), _sn(nn.Conv2d(b, b, 3, 1, 1))
        self.skip = _sn(nn.Conv2d(a, b, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return F.avg_pool2d(h, 2) + skip


class ProjectionDiscriminator(_Transitional):
    """D(x, y): images [N, 3, size, size] and labels [N] to one realness score each [N]."""

    def __init__(self, classes: int, width: int = 64, size: int = 64):
        super().__init__()
        chans = [3, *widths(width, blocks_for(size))[:-1]]
        self.blocks = nn.Sequential(*(DownBlock(a, b, i == 0)
                                      for i, (a, b) in enumerate(zip(chans, chans[1:]))))
        self.linear = _sn(nn.Linear(chans[-1], 1))
        self.embed = _sn(nn.Embedding(classes, chans[-1]))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        projection = (self.embed(labels) * h).sum(1)
        return self.linear(h).squeeze(1) + self.condition_weight * projection
