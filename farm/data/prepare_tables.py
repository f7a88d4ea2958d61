"""Preparing tabular datasets for an experiment: locate, load, split, encode.

Runs once in the driver; the trials get only the `fit` rows and the `val` slice
(`TabularData`), and the held-out `test` rows stay here for the final scoring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from farm.data.fetch import resolve_dataset
from farm.data.registry import get_source
from farm.data.split import Split, load_or_create, sha256_of
from farm.data.tabular import Table, load_table
from farm.data.transformer import TableTransformer
from farm.data.trial_data import TabularData
from farm.infra.errors import DataError


@dataclass
class PreparedTable:
    """One dataset as the driver holds it: the table, its split, and the trials' view of it."""

    table: Table
    split: Split
    trial_data: TabularData
    source_sha256: str

    def train_frame(self):
        return self.table.frame.iloc[self.split.train].reset_index(drop=True)

    def test_frame(self):
        return self.table.frame.iloc[list(self.split.test)].reset_index(drop=True)

    def encode_xy(self, frame):
        """Features (encoded) and labels, for the random forests that score a dataset."""
        t = self.trial_data.transformer
        return (t.transform(frame)[:, self.trial_data.features],
                frame[self.table.target].to_numpy(dtype=object))

    @cached_property
    def fit_xy(self):
        """The fit rows alone (the train split less its val slice): the trials' own encoding of
        them, not a second one."""
        data = self.trial_data
        return data.fit_enc[:, data.features], data.fit_frame[data.target].to_numpy(dtype=object)

    @cached_property
    def train_xy(self):
        """The real train split, encoded once for every forest that trains on it."""
        return self.encode_xy(self.train_frame())

    @cached_property
    def train_enc(self):
        """The real train split encoded whole (target too): the field's scores compare with it."""
        return self.trial_data.transformer.transform(self.train_frame())

    @cached_property
    def test_enc(self):
        """The test split encoded whole: the holdout of the final DCR share."""
        return self.trial_data.transformer.transform(self.test_frame())

    @cached_property
    def test_xy(self):
        """The held-out test split, encoded once: every trial's TSTR is scored on it."""
        return self.encode_xy(self.test_frame())


def dataset_name_for(path: str | Path) -> str:
    """A user's file becomes a dataset named after it (letters, digits, _ and - only)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_") or "table"


def prepare_table(name: str, path: Path, target: str | None, data_cfg: dict,
                  experiment_dir: Path, seed: int) -> PreparedTable:
    tables_cfg = data_cfg.get("tables", {})
    table = load_table(path, target=target, missing=tables_cfg.get("missing", "drop"))
    for note in table.notes:
        print(f"{path}: {note}")
    sha = sha256_of(path)
    split = load_or_create(experiment_dir / "splits" / f"{name}.json", table.labels,
                           test_fraction=tables_cfg.get("test_fraction", 0.3),
                           val_fraction=tables_cfg.get("val_fraction", 0.2), seed=seed,
                           dataset=name, source_sha256=sha)
    if len(split.fit) < 8 or not split.val or not split.test:
        raise DataError(f"only {len(table.frame)} usable rows: too few to split into "
                        "fit, validation and test parts", where=path)
    frame = table.frame
    fit = frame.iloc[list(split.fit)].reset_index(drop=True)
    val = frame.iloc[list(split.val)].reset_index(drop=True)
    transformer = TableTransformer(table.columns, snap=tables_cfg.get("snap", True)).fit(fit)
    features = transformer.feature_slices(table.target)
    fit_enc, val_enc = transformer.transform(fit), transformer.transform(val)
    data = TabularData(name=name, transformer=transformer, target=table.target, fit_frame=fit,
                       fit_enc=fit_enc, val_X=val_enc[:, features],
                       val_y=val[table.target].to_numpy(dtype=object), val_enc=val_enc)
    return PreparedTable(table, split, data, sha)


def prepare_tables(datasets: list[str], *, data_cfg: dict, experiment_dir: Path, seed: int,
                   data_dir: str | None = None, user_path: str | None = None,
                   user_target: str | None = None) -> dict[str, PreparedTable]:
    """Registry datasets by name, or the user's own file when `user_path` is given."""
    if user_path:
        name = dataset_name_for(user_path)
        return {name: prepare_table(name, Path(user_path), user_target, data_cfg,
                                    experiment_dir, seed)}
    prepared = {}
    for name in datasets:
        source = get_source(name)
        if source.kind != "table":
            raise DataError(f"dataset {name!r} is not a table")
        path = resolve_dataset(name, data_dir)
        prepared[name] = prepare_table(name, path, user_target or source.target, data_cfg,
                                       experiment_dir, seed)
    return prepared


BLACK_BOX_ROWS = "fit"  # what part B's forest learns from; summary.json records it


def attach_black_box(prepared: PreparedTable, seed: int, rows: str = BLACK_BOX_ROWS) -> dict:
    """Train part B's forest on the fit rows (`rows` "train": the whole train split, as runs
    before the val slice was kept from it did), so that tabular-b's val metrics are scored on
    rows the forest that steers the generator has not seen; report it on the test split (it
    selects nothing, so the test split may judge it) as the report's figures 8-13 do."""
    from farm.models.blackbox import black_box_report, fit_black_box

    data = prepared.trial_data
    X, y = {"fit": prepared.fit_xy, "train": prepared.train_xy}[rows]
    categories = data.transformer.block(data.target).column.categories
    data.black_box = fit_black_box(X, y, categories, data.features, seed, where=prepared.table.path)
    return {**black_box_report(data.black_box, *prepared.test_xy), "fitted_on": rows}


def class_counts(labels) -> dict[str, int]:
    values, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts)}
