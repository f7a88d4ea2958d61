"""Preparing an image dataset for an experiment: decode once, split, train (or reuse) the judge.

The judge is trained on the TRAIN split only, before any GAN trial starts, and checkpointed in
the experiment (`judge/<dataset>.pt`) so a resumed run reuses it. Its accuracy on the held-out
test split is the ceiling every generated pool is compared with later.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from farm.data.fetch import resolve_dataset
from farm.data.images import ImageSet, load_image_folder
from farm.data.split import Split, load_or_create, sha256_of
from farm.errors import ConfigError, DataError, settings_from
from farm.families.images import ImageData
from farm.judge import Judge, JudgeConfig, train_judge

MIN_PER_CLASS = 3  # at least one test image and two to train on


@dataclass
class PreparedImages:
    images: ImageSet
    split: Split
    trial_data: ImageData
    judge_test_accuracy: float
    judge_path: Path
    source_sha256: str


def image_root(name: str, data_dir: str | None, user_dir: str | None) -> Path:
    if user_dir:
        root = Path(user_dir)
        if not root.is_dir():
            raise DataError("no such folder" if not root.exists() else "not a folder", where=root)
        return root
    return resolve_dataset(name, data_dir)


def _cache_dir() -> Path:
    return Path(os.environ.get("FARM_CACHE_DIR", "~/.cache/gan-farm")).expanduser() / "decoded"


def _subset(images: ImageSet, wanted: list[str], root: Path) -> ImageSet:
    if not wanted:
        return images
    unknown = [c for c in wanted if c not in images.classes]
    if unknown:
        raise ConfigError(f"data.images.classes names {unknown[0]!r}, not a class folder of "
                          f"this dataset ({', '.join(images.classes[:8])} ...)", where=root)
    old = [images.classes.index(c) for c in wanted]
    keep = np.isin(images.labels, old)
    remap = {o: i for i, o in enumerate(old)}
    labels = np.array([remap[int(v)] for v in images.labels[keep]], dtype=np.int64)
    files = tuple(f for f, k in zip(images.files, keep) if k)
    return ImageSet(images.images[keep], labels, tuple(wanted), files)


def judge_config(values: dict) -> JudgeConfig:
    return settings_from(JudgeConfig, values, "data.images.judge")


def prepare_images(name: str, root: Path, data_cfg: dict, experiment_dir: Path,
                   seed: int) -> PreparedImages:
    cfg = data_cfg.get("images", {})
    images = _subset(load_image_folder(root, cfg.get("size", 64), _cache_dir(), progress=True),
                     list(cfg.get("classes") or []), root)
    counts = np.bincount(images.labels, minlength=len(images.classes))
    for label, count in enumerate(counts):
        if count < MIN_PER_CLASS:
            raise DataError(f"class has {count} image(s); a train/test split needs at least "
                            f"{MIN_PER_CLASS}", where=root / images.classes[label])
    sha = sha256_of(root) if len(images) < 5000 else f"files:{len(images.files)}"
    split = load_or_create(experiment_dir / "splits" / f"{name}.json", images.labels,
                           test_fraction=cfg.get("test_fraction", 0.2), val_fraction=0.0,
                           seed=seed, dataset=name, source_sha256=sha)
    train, test = np.asarray(split.fit), np.asarray(split.test)
    x_train = images.to_tensor(train)
    y_train = torch.as_tensor(images.labels[train])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    judge_path = experiment_dir / "judge" / f"{name}.pt"
    if judge_path.exists():
        judge = Judge.load(judge_path, device)
        print(f"Judge for {name}: reusing {judge_path}")
    else:
        config = judge_config({"seed": seed, **(cfg.get("judge") or {})})
        print(f"Training the judge for {name} ({config.arch}, {config.epochs} epochs) on "
              f"{len(train)} train images, {len(images.classes)} classes")
        judge = train_judge(x_train.to(device), y_train, len(images.classes), config, device,
                            progress=lambda line: print(f"  judge: {line}", flush=True),
                            classes=images.classes)
        judge.save(judge_path)
    x_test = images.to_tensor(test)
    test_accuracy = judge.accuracy(x_test.to(device), torch.as_tensor(images.labels[test]).to(device))
    print(f"Judge for {name}: accuracy {test_accuracy:.3f} on {len(test)} held-out test images "
          f"(chance {1 / len(images.classes):.3f})")
    features = judge.features(x_train.to(device)).cpu().numpy()
    real_features = {label: features[y_train.numpy() == label] for label in range(len(images.classes))}
    data = ImageData(name, images.images[train], images.labels[train], images.classes,
                     judge.payload(), real_features)
    return PreparedImages(images, split, data, float(test_accuracy), judge_path, sha)
