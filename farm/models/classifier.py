"""Image classifiers trained from scratch: the judge's and the evaluator's, one recipe for both.

A network is a `ClassifierNet` (a body that maps images to penultimate features, and a linear
head), its data are float tensors in [-1, 1] resident on the device, and an epoch is a plain loop
over shuffled index batches, so the judge (one process) and the evaluator (data-parallel
workers, each walking its own shard of the same order) share every line that trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from farm.config.classifiers import ARCHS
from farm.infra.errors import ConfigError

__all__ = ["ClassifierNet", "augment", "build_model", "confusion", "scores", "train_epoch"]

CROP_PADDING = 4


class ClassifierNet(nn.Module):
    """``body`` maps images to penultimate features [N, F]; ``head`` is the linear classifier."""

    def __init__(self, body: nn.Module, head: nn.Linear):
        super().__init__()
        self.body, self.head = body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _tiny_body() -> nn.Module:
    layers, channels = [], [3, 32, 64, 128, 128]
    for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
        layers += [nn.Conv2d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def _resnet(arch: str, width: int) -> nn.Module:
    """torchvision's ResNet18/34 with `width` channels in its first stage (64 is torchvision's;
    each later stage doubles it). 32 costs a quarter of the FLOPs: on FIDS30 at 64 px (768 train
    images) it reached the ResNet18's accuracy with twice the passes (bench/RESULTS.md)."""
    blocks = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}[arch]
    net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, blocks)
    if width == 64:
        return net
    block = torchvision.models.resnet.BasicBlock
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    for stage in range(4):
        layer = net._make_layer(block, width * 2 ** stage, blocks[stage],
                                stride=1 if stage == 0 else 2)
        setattr(net, f"layer{stage + 1}", layer)
    net.fc = nn.Linear(width * 8, net.fc.out_features)
    return net


def build_model(arch: str, num_classes: int, small_input_stem: bool = True,
                width: int = 64) -> ClassifierNet:
    """A randomly initialised network (nothing is downloaded).

    ``tiny`` is a 4-conv net for tests and smoke presets. ``small_input_stem`` swaps the ResNet's
    7x7 stride-2 conv and maxpool for a 3x3 stride-1 conv (the CIFAR-style stem), so the last
    stage still sees 8x8 maps at 64 px instead of 2x2, at about 16x the FLOPs. ``width``: the
    ResNet's first-stage channels (torchvision's 64; see `_resnet`).
    """
    if arch == "tiny":
        return ClassifierNet(_tiny_body(), nn.Linear(128, num_classes))
    if arch not in ARCHS:
        raise ConfigError(f"classifier arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if width < 4:
        raise ConfigError(f"classifier width must be at least 4, got {width}")
    net = _resnet(arch, width)
    if small_input_stem:
        net.conv1 = nn.Conv2d(3, width, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    head, net.fc = nn.Linear(net.fc.in_features, num_classes), nn.Identity()
    return ClassifierNet(net, head)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and random crop, per image, on x's device.

    The crop pads by reflection rather than with a constant: generated images never have flat
    borders, so a classifier should not learn to rely on them.
    """
    n, _, h, w = x.shape
    dev = x.device
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, [CROP_PADDING] * 4, mode="reflect")
    dy = torch.randint(0, 2 * CROP_PADDING + 1, (n, 1), generator=generator, device=dev)
    dx = torch.randint(0, 2 * CROP_PADDING + 1, (n, 1), generator=generator, device=dev)
    rows = (dy + torch.arange(h, device=dev))[:, :, None]  # [n, h, 1]
    cols = (dx + torch.arange(w, device=dev))[:, None, :]  # [n, 1, w]
    batch = torch.arange(n, device=dev)[:, None, None]
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()  # [n, h, w, c] -> NCHW


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches of one are dropped: BatchNorm cannot train on them."""
    return n // batch_size + (n % batch_size >= 2)


def train_epoch(model: nn.Module, opt, sched, x: torch.Tensor, y: torch.Tensor,
                order: torch.Tensor, batch_size: int, generator: torch.Generator,
                use_augment: bool) -> torch.Tensor:
    """One pass over ``x[order]`` in batches; returns the summed loss as a 0-d device tensor
    (no host sync), so a caller reads it once per epoch."""
    model.train()
    total = torch.zeros((), device=x.device)
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        if len(idx) < 2:
            continue
        xb = x[idx]
        if use_augment:
            xb = augment(xb, generator)
        loss = F.cross_entropy(model(xb), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        total += loss.detach() * len(idx)
    return total


@torch.no_grad()
def confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int,
              batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(confusion matrix [true, predicted] as int64, summed cross-entropy), on the device."""
    model.eval()
    matrix = torch.zeros(num_classes * num_classes, dtype=torch.long, device=x.device)
    loss = torch.zeros((), device=x.device)
    for i in range(0, x.shape[0], batch_size):
        logits = model(x[i:i + batch_size])
        target = y[i:i + batch_size]
        matrix += torch.bincount(target * num_classes + logits.argmax(1),
                                 minlength=num_classes * num_classes)
        loss += F.cross_entropy(logits, target, reduction="sum")
    return matrix.view(num_classes, num_classes), loss


def scores(matrix, classes) -> dict:
    """Accuracy, per-class accuracy (recall) and the matrix itself, as plain Python values."""
    m = torch.as_tensor(matrix).cpu()
    total = int(m.sum())
    support = m.sum(1)
    return {"accuracy": float(m.diag().sum()) / total if total else float("nan"),
            "per_class": {name: (float(m[i, i]) / int(support[i]) if int(support[i]) else None)
                          for i, name in enumerate(classes)},
            "confusion": m.tolist()}
