"""Preparing an image dataset for an experiment: decode once, split, train (or reuse) the judge.

The judge is trained on the TRAIN split only, before any GAN trial starts, and checkpointed in
the experiment (`judge/<dataset>.pt`) so a resumed run reuses it. Its accuracy on the held-out
test split is the ceiling every generated pool is compared with later.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from farm.config.classifiers import JudgeConfig, describe_arch
from farm.config.load import classes_wanted
from farm.data.fetch import resolve_dataset
from farm.data.images import ImageSet, load_image_folder, scan_image_folder
from farm.data.split import Split, load_or_create, sha256_of
from farm.data.trial_data import ImageData
from farm.infra.errors import ConfigError, DataError, settings_from
from farm.metrics.judge import Judge, train_judge

MIN_PER_CLASS = 3  # at least one test image and two to train on


@dataclass
class PreparedImages:
    images: ImageSet
    split: Split
    trial_data: ImageData
    judge_test_accuracy: float
    judge_path: Path
    source_sha256: str
    judge_seconds: float = 0.0  # 0 when the experiment's judge was reused


def image_root(name: str, data_dir: str | None, user_dir: str | None) -> Path:
    if user_dir:
        root = Path(user_dir)
        if not root.is_dir():
            raise DataError("no such folder" if not root.exists() else "not a folder", where=root)
        return root
    return resolve_dataset(name, data_dir)


def _cache_dir() -> Path:
    return Path(os.environ.get("FARM_CACHE_DIR", "~/.cache/gan-farm")).expanduser() / "decoded"


def chosen_classes(data_cfg: dict, dataset: str, found: tuple[str, ...],
                   root: Path) -> tuple[str, ...]:
    """The classes an experiment uses of a dataset whose folder scan found `found`: its subset
    in `data.images.classes`, checked against the folder before anything is decoded, or all."""
    wanted = classes_wanted(data_cfg, dataset)
    unknown = [c for c in wanted if c not in found]
    if unknown:
        shown = ", ".join(found[:8]) + (" ..." if len(found) > 8 else "")
        raise ConfigError(f"data.images.classes names {unknown[0]!r} for dataset {dataset!r}, "
                          f"not a class folder here (its class folders: {shown})", where=root)
    return tuple(wanted) if wanted else tuple(found)


def _subset(images: ImageSet, wanted: tuple[str, ...]) -> ImageSet:
    """Keep the classes `wanted` (checked by chosen_classes), relabelled in that order."""
    if wanted == images.classes:
        return images
    old = [images.classes.index(c) for c in wanted]
    keep = np.isin(images.labels, old)
    remap = {o: i for i, o in enumerate(old)}
    labels = np.array([remap[int(v)] for v in images.labels[keep]], dtype=np.int64)
    files = tuple(f for f, k in zip(images.files, keep) if k)
    return ImageSet(images.images[keep], labels, tuple(wanted), files)


def judge_config(values: dict) -> JudgeConfig:
    return settings_from(JudgeConfig, values, "data.images.judge")


def prepare_images(name: str, root: Path, data_cfg: dict, experiment_dir: Path,
                   seed: int, verbose: bool = False) -> PreparedImages:
    cfg = data_cfg.get("images", {})
    found, _ = scan_image_folder(root)
    wanted = chosen_classes(data_cfg, name, found, root)  # a wrong subset: before any decoding
    images = _subset(load_image_folder(root, cfg.get("size", 64), _cache_dir(), progress=True),
                     wanted)
    counts = np.bincount(images.labels, minlength=len(images.classes))
    for label, count in enumerate(counts):
        if count < MIN_PER_CLASS:
            raise DataError(f"class has {count} image(s); a train/test split needs at least "
                            f"{MIN_PER_CLASS}", where=root / images.classes[label])
    sha = sha256_of(root) if len(images) < 5000 else f"files:{len(images.files)}"
    # fit: what the GANs and the judge learn from; val: the slice that scores usefulness (kept
    # from both, so a probe tested on it is not flattered); test: the final evaluator's only.
    split = load_or_create(experiment_dir / "splits" / f"{name}.json", images.labels,
                           test_fraction=cfg.get("test_fraction", 0.2),
                           val_fraction=float(cfg.get("val_fraction", 0.0)), seed=seed,
                           dataset=name, source_sha256=sha, val_by_class=True)
    fit, val, test = np.asarray(split.fit), np.asarray(split.val), np.asarray(split.test)
    x_fit = images.to_tensor(fit)
    y_fit = torch.as_tensor(images.labels[fit])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    judge_path = experiment_dir / "judge" / f"{name}.pt"
    judge_started = time.perf_counter()
    if judge_path.exists():
        judge = Judge.load(judge_path, device)
        print(f"Judge for {name}: reusing {judge_path}")
    else:
        config = judge_config({"seed": seed, **(cfg.get("judge") or {})})
        print(f"Training the judge for {name} ({describe_arch(config.arch, config.width)}, "
              f"{config.epochs} epochs) on "
              f"{len(fit)} train images ({len(val)} more kept aside to score usefulness), "
              f"{len(images.classes)} classes")
        judge = train_judge(x_fit.to(device), y_fit, len(images.classes), config, device,
                            progress=lambda line: print(f"  judge: {line}", flush=True),
                            classes=images.classes, verbose=verbose)
        judge.save(judge_path)
    judge_seconds = time.perf_counter() - judge_started
    x_test = images.to_tensor(test)
    test_accuracy = judge.accuracy(x_test.to(device),
                                   torch.as_tensor(images.labels[test]).to(device))
    print(f"Judge for {name}: accuracy {test_accuracy:.3f} on {len(test)} held-out test images "
          f"(chance {1 / len(images.classes):.3f})")
    features = judge.features(x_fit.to(device)).cpu().numpy()
    real_features = {label: features[y_fit.numpy() == label]
                     for label in range(len(images.classes))}
    val_features = (judge.features(images.to_tensor(val).to(device)).cpu().numpy()
                    if len(val) else None)
    data = ImageData(name, images.images[fit], images.labels[fit], images.classes,
                     judge.payload(), real_features, val_features,
                     images.labels[val] if len(val) else None)
    return PreparedImages(images, split, data, float(test_accuracy), judge_path, sha,
                          round(judge_seconds, 1))
