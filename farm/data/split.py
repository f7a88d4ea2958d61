"""One stratified split per dataset, written into the experiment so a later run can check it.

Three parts for tables: `fit` (what a GAN trains on), `val` (a slice of the train split that
picks epochs), `test` (the held-out split, only ever seen by the final evaluator). The manifest
records the indices and the source's sha256; resuming with different data is an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from farm.infra.atomic import replacing
from farm.infra.errors import DataError


@dataclass(frozen=True)
class Split:
    dataset: str
    source_sha256: str
    seed: int
    test_fraction: float
    val_fraction: float
    fit: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]

    @property
    def train(self) -> np.ndarray:
        """fit and val together: everything except the held-out test rows."""
        return np.sort(np.r_[self.fit, self.val]).astype(np.int64)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def stratified_split(labels, test_fraction: float, val_fraction: float, seed: int,
                     dataset: str, source_sha256: str) -> Split:
    """Stratify by label; val is carved from the train part, also stratified."""
    labels = np.asarray(labels)
    index = np.arange(len(labels))
    train, test = _stratified(index, labels, test_fraction, seed)
    if val_fraction > 0:
        fit, val = _stratified(train, labels[train], val_fraction, seed + 1)
    else:
        fit, val = train, np.array([], dtype=np.int64)
    return Split(dataset, source_sha256, seed, test_fraction, val_fraction,
                 tuple(map(int, np.sort(fit))), tuple(map(int, np.sort(val))),
                 tuple(map(int, np.sort(test))))


def carve_val_by_class(split: Split, labels, fraction: float, seed: int) -> Split:
    """Move `fraction` of each class's fit rows to val (at least one, always leaving one to
    train on: a class without a val image could not be scored for usefulness). For images: a
    few dozen a class is too few for a stratified draw over all classes at once, and the
    train/test indices stay those of a split without val, so runs with and without a val slice
    share their test split."""
    labels = np.asarray(labels)
    fit = np.asarray(split.fit, dtype=np.int64)
    rng = np.random.default_rng(seed + 1)
    val = []
    for label in np.unique(labels[fit]):
        mine = rng.permutation(fit[labels[fit] == label])
        k = min(max(1, round(fraction * len(mine))), len(mine) - 1) if fraction > 0 else 0
        val.extend(mine[:k].tolist())
    val = np.sort(np.asarray(val, dtype=np.int64))
    return Split(split.dataset, split.source_sha256, split.seed, split.test_fraction, fraction,
                 tuple(map(int, np.setdiff1d(fit, val))), tuple(map(int, val)), split.test)


def _stratified(index, labels, fraction, seed):
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    return train_test_split(index, test_size=fraction, random_state=seed, stratify=stratify)


def write_manifest(split: Split, path: Path) -> None:
    """Atomic write: a crash never leaves half a manifest."""
    with replacing(path) as tmp:
        tmp.write_text(json.dumps(asdict(split)))


def read_manifest(path: Path) -> Split:
    try:
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict):
            raise TypeError(f"expected a JSON object, got {type(data).__name__}")
        return Split(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except (OSError, ValueError, TypeError) as exc:
        raise DataError(f"unreadable split manifest ({exc})", where=path) from None


def load_or_create(path: Path, labels, *, test_fraction: float, val_fraction: float, seed: int,
                   dataset: str, source_sha256: str, val_by_class: bool = False) -> Split:
    """Reuse the experiment's split if it exists (and still matches the data), else write one.
    `val_by_class`: carve val from each class's fit rows (`carve_val_by_class`)."""
    if path.exists():
        kept = read_manifest(path)
        if kept.source_sha256 != source_sha256:
            raise DataError(f"dataset {dataset!r} changed since this experiment was split "
                            "(sha256 differs); use a new --name", where=path)
        wanted = (seed, test_fraction, val_fraction)
        if (kept.seed, kept.test_fraction, kept.val_fraction) != wanted:
            raise DataError(f"experiment was split with seed {kept.seed}, test fraction "
                            f"{kept.test_fraction}, val fraction {kept.val_fraction}; rerun "
                            "with those or a new --name", where=path)
        return kept
    if val_by_class:
        fresh = carve_val_by_class(stratified_split(labels, test_fraction, 0.0, seed, dataset,
                                                    source_sha256), labels, val_fraction, seed)
    else:
        fresh = stratified_split(labels, test_fraction, val_fraction, seed, dataset,
                                 source_sha256)
    write_manifest(fresh, path)
    return fresh
