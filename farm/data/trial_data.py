"""What a trial gets of a dataset: built once in the driver (farm/data/prepare_tables.py,
prepare_images.py) and shared with every trial through Ray's object store. Train rows and the
val slice only: the held-out test split never leaves the driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from farm.data.images import to_unit_range
from farm.data.transformer import TableTransformer


@dataclass
class TabularData:
    """What a tabular trial needs, built once by the driver and shared via the object store."""

    name: str
    transformer: TableTransformer
    target: str
    fit_frame: pd.DataFrame
    fit_enc: np.ndarray
    val_X: np.ndarray
    val_y: np.ndarray
    black_box: object = None  # farm.models.blackbox.BlackBox, for a family steered by one
    val_enc: np.ndarray | None = None  # the val rows encoded whole: `dcr_share`'s holdout

    @property
    def features(self) -> np.ndarray:
        return self.transformer.feature_slices(self.target)

    def numeric(self) -> list[str]:
        return [b.column.name for b in self.transformer.blocks if b.column.kind == "numeric"]

    def nominal(self) -> list[str]:
        return [b.column.name for b in self.transformer.blocks if b.column.kind == "nominal"]


@dataclass
class ImageData:
    """Decoded once in the driver, shared with every trial through the object store."""

    name: str
    images: np.ndarray              # uint8 [N, H, W, 3], TRAIN split only
    labels: np.ndarray              # int64 [N]
    classes: tuple[str, ...]
    judge: dict                     # Judge.payload()
    real_features: dict[int, np.ndarray]  # per class: the judge's features of its fit images
    val_features: np.ndarray | None = None  # the judge's features of the val slice (kept from
    val_labels: np.ndarray | None = None    # GANs and judge): what `useful` is tested on
    # weights grown on this dataset for families whose trials begin from a shared start
    # (fruit-pairs' `shared_start`): {start key: {"generator": ..., "discriminator": ...}}
    starts: dict[str, dict] = field(default_factory=dict)

    def tensor(self, index, device) -> torch.Tensor:
        return to_unit_range(self.images[index], device)
