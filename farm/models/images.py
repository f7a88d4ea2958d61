"""The fruit report's networks (FIDS30, 64x64 RGB in [-1, 1], NCHW): generators G1, G2, G2a,
discriminator D34 (resnet34), and a light DCGAN discriminator for smoke runs.

"Spiked" noise is the report's conditioning: no extra input, just one noise entry (G1) or one
column of the noise plane (G2, G2a) overwritten to say which class to generate. The helpers
are pure functions so a training loop can spike any generator's noise by name.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet34

from farm.models.conditional import DownBlock, _sn, blocks_for, widths

IMAGE_SHAPE = (3, 64, 64)
PLANE_WIDTH = 64  # columns in G2/G2a's noise plane, so at most 64 spikable classes


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2016 init (conv weights N(0, 0.02), batch-norm scales N(1, 0.02)): the
    recipe the DCGAN-style G1 comes with."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _rows_and_k(z: torch.Tensor, k: int | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(z.shape[0], device=z.device)
    k = torch.as_tensor(k, dtype=torch.long, device=z.device).expand(z.shape[0])
    return rows, k


def spike_vector(z: torch.Tensor, k: int | torch.Tensor, s: float = 10.0) -> torch.Tensor:
    """A copy of G1 noise ([N, D] or [N, D, 1, 1]) with entry k of each row set to s; k is one
    int or a LongTensor [N]. The report: "the k-th 'pixel' is set to 1", then raised "to a
    sufficiently high value (e.g. 10)" because a 1 occurs by chance in normal noise."""
    out = z.clone()
    rows, k = _rows_and_k(z, k)
    out[rows, k] = s
    return out


def spike_plane(z: torch.Tensor, k: int | torch.Tensor, value: float = 1.0) -> torch.Tensor:
    """A copy of a G2/G2a noise plane [N, 3, H, 64] with column k of each row set to ones in
    every channel (the report: "the k-th 'column' is set to an 8x1 array of ones for all 3
    channels"); k is one int or a LongTensor [N]."""
    out = z.clone()
    rows, k = _rows_and_k(z, k)
    out[rows, :, :, k] = value
    return out


def noise_for(generator: nn.Module, n: int, device: torch.device | str | None = None,
              generator_rng: torch.Generator | None = None) -> torch.Tensor:
    """Standard-normal noise [n, *generator.noise_shape] (the report: "mean=0, var=1")."""
    return torch.randn((n, *generator.noise_shape), device=device, generator=generator_rng)


class _Spiked(nn.Module):
    """What every generator shares: noise_shape, and optional class labels that spike the
    noise inside forward, so a loop can call G(noise, labels) on any of them."""

    noise_shape: tuple[int, ...]
    cond_classes: int

    def spike(self, z: torch.Tensor, labels: int | torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _maybe_spike(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if labels is None:
            return z
        if not self.cond_classes:
            raise ValueError(f"{type(self).__name__} got labels but cond_classes=0")
        return self.spike(z, labels)


class G1(_Spiked):
    """Report, G1: "five 'deconvolution' layers (nn.ConvTranspose2d) with batch normalization
    (nn.BatchNorm2d) and ... nn.ReLU in between. Given a batch of 100x1x1 noise, G1 outputs a
    batch of 3-channel 64x64 images" -- the DCGAN generator (1->4->8->16->32->64, Tanh out).
    cond_classes > 0 makes it the spiked conditional model: labels spike entry k to
    spike_value."""

    def __init__(self, noise_dim: int = 100, width: int = 64, cond_classes: int = 0,
                 spike_value: float = 10.0):
        super().__init__()
        if cond_classes > noise_dim:
            raise ValueError(f"cond_classes={cond_classes} exceeds noise_dim={noise_dim}")
        self.noise_dim, self.cond_classes, self.spike_value = noise_dim, cond_classes, spike_value
        self.noise_shape = (noise_dim, 1, 1)
        chans = [noise_dim, width * 8, width * 4, width * 2, width]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers += [nn.ConvTranspose2d(a, b, 4, 1 if i == 0 else 2, 0 if i == 0 else 1,
                                          bias=False),
                       nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(width, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def spike(self, z: torch.Tensor, labels: int | torch.Tensor) -> torch.Tensor:
        return spike_vector(z, labels, self.spike_value)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = self._maybe_spike(z, labels)
        if z.dim() == 2:
            z = z.reshape(z.shape[0], -1, 1, 1)
        return self.net(z)


def _encoder(specs: list[tuple[int, int, tuple, tuple, tuple]]) -> nn.Sequential:
    """Convs (in, out, kernel, stride, padding) with batch norm and leaky ReLU(0.2) between
    them and nothing after the last, whose output is G1's 100x1x1 'noise'."""
    layers: list[nn.Module] = []
    for i, (a, b, k, s, p) in enumerate(specs):
        layers.append(nn.Conv2d(a, b, k, s, p, bias=i == len(specs) - 1))
        if i < len(specs) - 1:
            layers += [nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers)


class _PlaneGenerator(_Spiked):
    def __init__(self, height: int, specs: list, width: int, cond_classes: int):
        super().__init__()
        if cond_classes > PLANE_WIDTH:
            raise ValueError(f"cond_classes={cond_classes} exceeds the {PLANE_WIDTH} columns")
        self.cond_classes = cond_classes
        self.noise_shape = (3, height, PLANE_WIDTH)
        self.encode = _encoder(specs)
        self.g1 = G1(100, width)
        self.encode.apply(dcgan_init)

    def spike(self, z: torch.Tensor, labels: int | torch.Tensor) -> torch.Tensor:
        return spike_plane(z, labels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.g1(self.encode(self._maybe_spike(z, labels)))


class G2(_PlaneGenerator):
    """Report, G2: "Five convolutional layers are inserted before the deconvolution layers of
    G1. G2 takes a 3x8x64 input, applies convolutions until the data has size 100x1x1 and then
    continues like G1." The report gives no kernels; ours (H x W after each):
    (4,4)/2 -> 4x32, (4,4)/2 -> 2x16, (2,4)/2 -> 1x8, (1,4)/(1,2) -> 1x4, (1,4)/1 -> 1x1."""

    def __init__(self, width: int = 64, cond_classes: int = 0):
        w = width
        super().__init__(8, [
            (3, w, (4, 4), (2, 2), (1, 1)),
            (w, w * 2, (4, 4), (2, 2), (1, 1)),
            (w * 2, w * 4, (2, 4), (2, 2), (0, 1)),
            (w * 4, w * 8, (1, 4), (1, 2), (0, 1)),
            (w * 8, 100, (1, 4), (1, 1), (0, 0)),
        ], width, cond_classes)


class G2a(_PlaneGenerator):
    """Report, G2a: "Operates similarly to G2 but has only three convolutional layers with
    different kernel sizes and strides. Input size is 3x10x64." Ours (H x W after each):
    (3,8)/(1,4) pad (0,2) -> 8x16, (4,4)/2 pad 1 -> 4x8, (4,8)/1 -> 1x1."""

    def __init__(self, width: int = 64, cond_classes: int = 0):
        w = width
        super().__init__(10, [
            (3, w * 2, (3, 8), (1, 4), (0, 2)),
            (w * 2, w * 4, (4, 4), (2, 2), (1, 1)),
            (w * 4, 100, (4, 8), (1, 1), (0, 0)),
        ], width, cond_classes)


def _logits(x: torch.Tensor, num_outputs: int) -> torch.Tensor:
    x = torch.flatten(x, 1)
    return x.squeeze(1) if num_outputs == 1 else x


class D34(nn.Module):
    """Report, D34: "Residual neural net based on resnet34. The last layer ... is a linear
    transformation to the number of output features, which we changed to the number of
    classes": 1 real/fake logit for a pair, num_classes + 1 for the spiked conditional model.
    Randomly initialised; `pretrained` may name a local resnet34 state dict (never
    downloaded)."""

    def __init__(self, num_outputs: int = 1, pretrained: bool | str | Path = False):
        super().__init__()
        if pretrained is True:
            raise ValueError("D34 never downloads weights: pass a local state-dict path")
        self.num_outputs = num_outputs
        self.net = resnet34(weights=None)
        if pretrained:
            self.net.load_state_dict(torch.load(pretrained, map_location="cpu",
                                                weights_only=True))
        self.net.fc = nn.Linear(self.net.fc.in_features, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _logits(self.net(x), self.num_outputs)


class DCGANDiscriminator(nn.Module):
    """The light option (Radford et al. 2016): four stride-2 convs 64->32->16->8->4 with
    leaky ReLU(0.2), batch norm on all but the first, then a 4x4 conv to num_outputs."""

    def __init__(self, width: int = 64, num_outputs: int = 1):
        super().__init__()
        self.num_outputs = num_outputs
        chans = [3, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            layers.append(nn.Conv2d(a, b, 4, 2, 1, bias=False))
            if i:
                layers.append(nn.BatchNorm2d(b))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(width * 8, num_outputs, 4, 1, 0))
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _logits(self.net(x), self.num_outputs)


class SNResNetDiscriminator(nn.Module):
    """The conditional family's discriminator without classes: residual downsampling blocks
    with spectral norm on every layer (Miyato et al. 2018), global sum pooling and a linear head.
    Spectral norm bounds how sharply D can separate a few dozen real images from the rest,
    which is what lets a per-class pair keep its variety (bench/RESULTS.md)."""

    def __init__(self, width: int = 64, num_outputs: int = 1, size: int = 64):
        super().__init__()
        self.num_outputs = num_outputs
        chans = [3, *widths(width, blocks_for(size))[:-1]]
        self.blocks = nn.Sequential(*(DownBlock(a, b, i == 0)
                                      for i, (a, b) in enumerate(zip(chans, chans[1:]))))
        self.linear = _sn(nn.Linear(chans[-1], num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.blocks(x)).sum(dim=(2, 3))
        return _logits(self.linear(h), self.num_outputs)


GENERATORS = {"G1": G1, "G2": G2, "G2a": G2a}
DISCRIMINATORS = {"D34": D34, "DCGAN": DCGANDiscriminator, "SNResNet": SNResNetDiscriminator}
