"""The judge: a classifier of the real images that scores every GAN trial of an experiment.

It is trained once per experiment, on the real TRAIN split only, before any GAN trial starts,
so that every trial is measured with the same ruler. Two things are read from it:

* its penultimate features, the space in which KID compares generated and real images
  (no pretrained Inception: nothing may be downloaded, and it knows nothing of our classes);
* its softmax, which says whether an image generated for class c looks like class c.

Model selection uses ``val_fraction`` of the train split; the held-out test split is never
seen here. Training is a plain loop over tensors resident on the device (the datasets are a
few thousand 64x64 images at most), so there is no DataLoader and no worker process.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from farm.config.classifiers import JudgeConfig
from farm.infra.atomic import replacing
from farm.infra.errors import DataError
from farm.infra.progress import milestone
from farm.metrics.images import kid
from farm.models.classifier import (ClassifierNet, augment, build_model, confusion, steps_per_epoch,
                                    train_epoch)

JudgeNet = ClassifierNet  # the judge's network is the shared classifier

__all__ = ["Judge", "augment", "build_model", "judge_space_kid", "train_judge"]

FORMAT = "farm-judge"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- judge


class Judge:
    """A trained judge network in eval mode, with the metadata to save and reload it."""

    def __init__(self, model: JudgeNet, config: JudgeConfig, num_classes: int,
                 classes: Sequence[str] | None = None, device: str | torch.device = "cpu",
                 best_epoch: int | None = None, val_accuracy: float | None = None):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.config, self.num_classes = config, int(num_classes)
        self.classes = None if classes is None else tuple(classes)
        self.best_epoch, self.val_accuracy = best_epoch, val_accuracy

    @torch.no_grad()
    def _batched(self, fn: Callable, x: torch.Tensor, batch_size: int) -> torch.Tensor:
        _check_images(x)
        self.model.eval()
        out = [fn(x[i:i + batch_size].to(self.device, torch.float32))
               for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out) if out else torch.empty(0, device=self.device)

    def logits(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[N, C] logits, on the judge's device."""
        return self._batched(self.model, x, batch_size)

    def features(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[N, F] penultimate features (the KID space), on the judge's device."""
        return self._batched(self.model.body, x, batch_size)

    @torch.no_grad()
    def features_and_predictions(self, x: torch.Tensor, batch_size: int = 256):
        """([N, F] features, [N] most likely class) from one pass of the body: scoring a
        generated image needs both, and the body is nearly all of the cost."""
        features = self.features(x, batch_size)
        return features, self.model.head(features).argmax(dim=1)

    def probs(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[N, C] softmax: how much each image looks like each class."""
        return self.logits(x, batch_size).softmax(dim=1)

    def predict(self, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """[N] most likely class."""
        return self.logits(x, batch_size).argmax(dim=1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
        y = torch.as_tensor(y, device=self.device)
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels: expected shape ({x.shape[0]},), got {tuple(y.shape)}")
        return float((self.predict(x, batch_size) == y).float().mean())

    def payload(self) -> dict:
        """A plain dict of tensors and primitives: what `save` writes and trials receive."""
        return {
            "format": FORMAT, "version": FORMAT_VERSION,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "config": asdict(self.config), "num_classes": self.num_classes,
            "classes": None if self.classes is None else list(self.classes),
            "best_epoch": self.best_epoch, "val_accuracy": self.val_accuracy,
        }

    @classmethod
    def from_payload(cls, payload: dict, device: str | torch.device = "cpu") -> Judge:
        config = JudgeConfig(**payload["config"])
        model = build_model(config.arch, payload["num_classes"], config.small_input_stem,
                            config.width)
        model.load_state_dict(payload["state_dict"])
        return cls(model, config, payload["num_classes"], payload["classes"], device,
                   payload["best_epoch"], payload["val_accuracy"])

    def save(self, path: str | os.PathLike) -> None:
        """A plain dict of tensors and primitives (loadable with weights_only), written
        atomically."""
        path = Path(path)
        payload = self.payload()
        with replacing(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> Judge:
        """Reload a saved judge (tensors only are unpickled: ``weights_only=True``)."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError("judge checkpoint not found", where=path) from None
        except Exception as exc:
            raise DataError(f"cannot read judge checkpoint: {exc}", where=path) from exc
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise DataError("not a judge checkpoint", where=path)
        if payload.get("version") != FORMAT_VERSION:
            raise DataError(f"judge checkpoint version {payload.get('version')} is not "
                            f"{FORMAT_VERSION}", where=path)
        return cls.from_payload(payload, device)


def judge_space_kid(judge: Judge, real_images: torch.Tensor, fake_images: torch.Tensor,
                    subsets: int = 100, subset_size: int = 1000,
                    generator: torch.Generator | None = None, **kernel) -> tuple[float, float]:
    """(mean, std) KID between two image batches, in the judge's penultimate features."""
    return kid(judge.features(real_images), judge.features(fake_images), subsets=subsets,
               subset_size=subset_size, generator=generator, **kernel)


# --------------------------------------------------------------------------- training


def _check_images(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError("images: expected a float tensor in [-1, 1] (ImageSet.to_tensor())")
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"images: expected shape [N, 3, H, W], got {tuple(x.shape)}")


def _stratified_val(labels: torch.Tensor, fraction: float, generator: torch.Generator):
    """(fit, val) index tensors: ``fraction`` of each class (at least one if it has 2+) to val."""
    if fraction == 0:
        return torch.arange(len(labels)), torch.empty(0, dtype=torch.long)
    fit, val = [], []
    for c in labels.unique(sorted=True).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        k = min(max(1, round(fraction * len(idx))), len(idx) - 1) if len(idx) >= 2 else 0
        val.append(idx[:k])
        fit.append(idx[k:])
    return torch.cat(fit).sort().values, torch.cat(val).sort().values


def train_judge(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                config: JudgeConfig = JudgeConfig(), device: str | torch.device = "cpu",
                progress: Callable[[str], object] | None = print,
                classes: Sequence[str] | None = None, verbose: bool = False) -> Judge:
    """Train on (images, labels) of the TRAIN split and return the epoch best on its val slice.
    `progress` hears each quarter's epoch and the kept one (every epoch if `verbose`).

    ``images`` is float [N, 3, H, W] in [-1, 1]. Ties in val accuracy go to the lower val
    loss. With ``val_fraction == 0`` the last epoch is kept.
    """
    _check_images(images)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels: expected shape ({images.shape[0]},), got {tuple(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    if classes is not None and len(classes) != num_classes:
        raise ValueError(f"{len(classes)} class names for {num_classes} classes")
    device = torch.device(device)
    say = progress or (lambda _msg: None)

    cpu_gen = torch.Generator().manual_seed(config.seed)
    fit_idx, val_idx = _stratified_val(labels, config.val_fraction, cpu_gen)
    if len(fit_idx) < 2:
        raise ValueError(f"need at least 2 training images, got {len(fit_idx)}")
    x_fit = images[fit_idx].to(device, torch.float32)
    y_fit = labels[fit_idx].to(device)
    x_val = images[val_idx].to(device, torch.float32)
    y_val = labels[val_idx].to(device)

    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global RNG
        torch.manual_seed(config.seed)
        model = build_model(config.arch, num_classes, config.small_input_stem, config.width)
    model.to(device)
    dev_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(fit_idx)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, config.epochs * steps_per_epoch(n, config.batch_size))

    best = None  # (val accuracy, -val loss), epoch, state
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(n, generator=dev_gen, device=device)
        train_loss = train_epoch(model, opt, sched, x_fit, y_fit, order, config.batch_size,
                                 dev_gen, config.augment)
        line = f"epoch {epoch}/{config.epochs}: train loss {float(train_loss) / n:.4f}"
        if len(val_idx):
            matrix, loss = confusion(model, x_val, y_val, num_classes)
            acc, val_loss = float(matrix.diag().sum()) / len(val_idx), float(loss) / len(val_idx)
            line += f", val acc {acc:.3f}, val loss {val_loss:.4f}"
            if best is None or (acc, -val_loss) > best[0]:
                best = ((acc, -val_loss), epoch, copy.deepcopy(model.state_dict()))
        if milestone(epoch, config.epochs, verbose=verbose):
            say(line)
    if best is None:
        return Judge(model, config, num_classes, classes, device, config.epochs, None)
    (acc, _), epoch, state = best
    model.load_state_dict(state)
    say(f"kept epoch {epoch} (val acc {acc:.3f})")
    return Judge(model, config, num_classes, classes, device, epoch, acc)
