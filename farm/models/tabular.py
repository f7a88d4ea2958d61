"""The tabular report's MLPs (part A), plus the minibatch-discrimination layer its part B adds.

Generator: noise (20-d normal) through leaky-ReLU(0.4) layers to one value per encoded column,
squashed into [0, 1] like the encoded data (the report: a ReLU capped at the top of the range).
Discriminator: the mirror image ending in one logit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

class BlockwiseOutput(nn.Module):
    """A one-hot per nominal column (Gumbel-softmax, hard in the forward pass, soft gradients),
    a sigmoid per numeric one: generated rows have exactly the form of encoded real rows, so D
    cannot tell them apart by soft one-hot cells alone (as in CTGAN)."""

    def __init__(self, nominal_blocks: Sequence[tuple[int, int]], tau: float = 0.2):
        super().__init__()
        self.nominal_blocks, self.tau = list(nominal_blocks), tau

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        out = torch.sigmoid(logits)
        if not self.nominal_blocks:
            return out
        parts, last = [], 0  # columns are the last axis: rows [n, cols] or members' [m, n, cols]
        for start, stop in self.nominal_blocks:
            parts.append(out[..., last:start])
            block = logits[..., start:stop]
            if self.training:
                parts.append(nn.functional.gumbel_softmax(block, tau=self.tau, hard=True))
            else:
                parts.append(nn.functional.one_hot(block.argmax(-1), stop - start)
                             .to(block.dtype))
            last = stop
        parts.append(out[..., last:])
        return torch.cat(parts, dim=-1)


OUTPUTS = {
    # The report's choice: ReLU capped at 1, so one-hot cells can be exactly 0 or 1.
    "capped_relu": lambda blocks, tau: nn.Hardtanh(0.0, 1.0),
    "sigmoid": lambda blocks, tau: nn.Sigmoid(),
    "blockwise": BlockwiseOutput,
}


def mlp(sizes: Sequence[int], slope: float, dropout: float = 0.0,
        batchnorm: bool = False) -> nn.Sequential:
    """Linear layers with leaky ReLU (and optional batch norm, dropout) between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(nn.LeakyReLU(slope))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, noise_dim: int, out_dim: int, hidden: Sequence[int] = (64, 128, 256),
                 slope: float = 0.4, output: str = "capped_relu", cond_dim: int = 0,
                 nominal_blocks: Sequence[tuple[int, int]] = (), gumbel_tau: float = 0.2,
                 batchnorm: bool = False):
        super().__init__()
        self.noise_dim, self.cond_dim = noise_dim, cond_dim
        self.body = mlp([noise_dim + cond_dim, *hidden, out_dim], slope, batchnorm=batchnorm)
        self.out = OUTPUTS[output](nominal_blocks, gumbel_tau)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = z if cond is None else torch.cat([z, cond], dim=1)
        return self.out(self.body(x))


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016: B features that tell D how alike the rows of a batch are (the rows
    are the second-to-last axis, so a stack of members' batches [m, n, in] works alike)."""

    def __init__(self, in_dim: int, out_features: int = 5, kernel_dim: int = 3):
        super().__init__()
        self.T = nn.Parameter(torch.randn(in_dim, out_features * kernel_dim) * 0.1)
        self.out_features, self.kernel_dim = out_features, kernel_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = (x @ self.T).view(*x.shape[:-1], self.out_features, self.kernel_dim)
        l1 = (m.unsqueeze(-4) - m.unsqueeze(-3)).abs().sum(dim=-1)  # [..., n, n, B]
        features = torch.exp(-l1).sum(dim=-2) - 1.0  # minus the row's match with itself
        return torch.cat([x, features], dim=-1)


class MLPDiscriminator(nn.Module):
    def __init__(self, in_dim: int, hidden: Sequence[int] = (256, 128, 64), slope: float = 0.4,
                 minibatch_features: int = 0, minibatch_kernel: int = 3, dropout: float = 0.0,
                 pack: int = 1):
        super().__init__()
        self.pack = pack
        self.body = nn.Sequential(mlp([in_dim * pack, *hidden], slope, dropout),
                                  nn.LeakyReLU(slope))
        last = hidden[-1]
        if minibatch_features:
            self.mbd = MinibatchDiscrimination(last, minibatch_features, minibatch_kernel)
            last += minibatch_features
        else:
            self.mbd = nn.Identity()
        self.head = nn.Linear(last, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pack > 1:  # PacGAN (Lin et al. 2018): judge `pack` rows at once, as CTGAN does
            n = x.shape[-2]
            x = x[..., : n - n % self.pack, :].reshape(*x.shape[:-2], -1,
                                                       x.shape[-1] * self.pack)
        return self.head(self.mbd(self.body(x))).squeeze(-1)
