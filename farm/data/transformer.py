"""The seeds' reversible encoding of a table: one-hot for nominal, min-max to [0, 1] for numeric.

`inverse_transform` is exact on real rows (integers stay integers, floats are rounded to the
decimals the source used) and safe on generated ones: numeric values are clipped into the fitted
range and every nominal block decodes to one of the column's original categories.

With `snap=True` decoding also respects where real values sit, which a GAN's smooth output
misses and a detector spots at once (German credit's `duration` heaps on 6, 12, 24 months;
half of diabetes' `insu` is exactly 0): a column with few distinct values decodes to the
nearest observed value, and any other column snaps to a value held by many rows when it lands
within half the gap to that value's neighbours. Real values are fixed points of both rules, so
encode-then-decode stays the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from farm.data.tabular import Column


@dataclass(frozen=True)
class Block:
    """Where one column lives in the encoded array."""

    column: Column
    start: int
    stop: int
    low: float = 0.0
    high: float = 1.0
    support: tuple[float, ...] = ()                 # snap to these (few distinct values) ...
    masses: tuple[tuple[float, float], ...] = ()    # ... or to (value, radius) point masses


SNAP_DISTINCT = 50      # at most this many distinct values: decode to the nearest one
SNAP_MASS_SHARE = 0.05  # a value held by at least this share of rows is a point mass


class TableTransformer:
    """Fit on the rows a GAN trains on; encode to [0, 1], decode back to the original schema."""

    def __init__(self, columns: tuple[Column, ...], snap: bool = False):
        self.columns = tuple(columns)
        self.snap = snap
        self.blocks: tuple[Block, ...] = ()

    def fit(self, frame: pd.DataFrame) -> "TableTransformer":
        blocks, start = [], 0
        for col in self.columns:
            if col.kind == "nominal":
                width = len(col.categories)
                blocks.append(Block(col, start, start + width))
            else:
                values = frame[col.name].to_numpy(dtype=np.float64)
                width = 1
                support, masses = _snap_targets(values) if self.snap else ((), ())
                blocks.append(Block(col, start, start + 1, float(values.min()), float(values.max()),
                                    support, masses))
            start += width
        self.blocks = tuple(blocks)
        return self

    def state(self) -> dict:
        """Everything decoding needs, as JSON types: the schema (column order, kinds,
        categories, integer columns, decimals) and each column's fitted range and snap
        targets. A generator file carries it so that rows decode with no data at hand."""
        return {"snap": self.snap,
                "blocks": [{"name": b.column.name, "kind": b.column.kind,
                            "categories": list(b.column.categories),
                            "integer": b.column.integer, "decimals": b.column.decimals,
                            "start": b.start, "stop": b.stop, "low": b.low, "high": b.high,
                            "support": list(b.support), "masses": [list(m) for m in b.masses]}
                           for b in self.blocks]}

    @classmethod
    def from_state(cls, state: dict) -> "TableTransformer":
        """The fitted transformer `state()` described (JSON keeps floats exactly)."""
        blocks = []
        for b in state["blocks"]:
            column = Column(b["name"], b["kind"], tuple(b["categories"]), bool(b["integer"]),
                            int(b["decimals"]))
            blocks.append(Block(column, int(b["start"]), int(b["stop"]), float(b["low"]),
                                float(b["high"]), tuple(map(float, b["support"])),
                                tuple((float(v), float(r)) for v, r in b["masses"])))
        transformer = cls(tuple(b.column for b in blocks), snap=bool(state["snap"]))
        transformer.blocks = tuple(blocks)
        return transformer

    @property
    def width(self) -> int:
        return self.blocks[-1].stop if self.blocks else 0

    def block(self, name: str) -> Block:
        for block in self.blocks:
            if block.column.name == name:
                return block
        raise KeyError(name)

    def nominal_blocks(self) -> list[tuple[int, int]]:
        """Where each nominal column's one-hot block sits in an encoded row: what a generator
        must emit as an exact one-hot."""
        return [(b.start, b.stop) for b in self.blocks if b.column.kind == "nominal"]

    def feature_slices(self, target: str) -> np.ndarray:
        """Indices of the encoded array that are not the target's block."""
        tb = self.block(target)
        return np.r_[0:tb.start, tb.stop:self.width]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        # float64 so that decoding is exact for any column; trials cast to float32 themselves.
        out = np.zeros((len(frame), self.width), dtype=np.float64)
        for b in self.blocks:
            values = frame[b.column.name]
            if b.column.kind == "nominal":
                index = {c: i for i, c in enumerate(b.column.categories)}
                codes = values.astype(str).map(index)
                if codes.isna().any():
                    bad = values[codes.isna()].iloc[0]
                    raise ValueError(f"column {b.column.name!r}: unknown category {bad!r}")
                out[np.arange(len(frame)), b.start + codes.to_numpy(dtype=np.int64)] = 1.0
            else:
                span = b.high - b.low
                x = values.to_numpy(dtype=np.float64)
                out[:, b.start] = 0.0 if span == 0 else (x - b.low) / span
        return out

    def inverse_transform(self, encoded: np.ndarray) -> pd.DataFrame:
        # A diverged generator may emit NaN/inf: decode it to in-range values, never garbage.
        encoded = np.nan_to_num(np.asarray(encoded, dtype=np.float64), nan=0.0, posinf=1.0,
                                neginf=0.0)
        data = {}
        for b in self.blocks:
            col = b.column
            if col.kind == "nominal":
                codes = encoded[:, b.start:b.stop].argmax(axis=1)
                data[col.name] = np.asarray(col.categories, dtype=object)[codes]
            else:
                x = np.clip(encoded[:, b.start], 0.0, 1.0) * (b.high - b.low) + b.low
                x = np.clip(x, b.low, b.high)
                x = _snap(x, b)
                if col.integer:
                    data[col.name] = np.clip(np.round(x), np.ceil(b.low),
                                             np.floor(b.high)).astype(np.int64)
                else:
                    data[col.name] = np.clip(np.round(x, col.decimals), b.low, b.high)
        return pd.DataFrame(data, columns=[c.name for c in self.columns])

    def labels(self, encoded: np.ndarray, target: str) -> np.ndarray:
        """The target column decoded from encoded rows (argmax of its one-hot block)."""
        b = self.block(target)
        chosen = encoded[:, b.start:b.stop].argmax(axis=1)
        return np.asarray(b.column.categories, dtype=object)[chosen]


def _snap_targets(values: np.ndarray):
    """The observed support of a column with few values, else its point masses with the
    radius (half the gap to the nearest other observed value) inside which they attract."""
    distinct, counts = np.unique(values, return_counts=True)
    if len(distinct) <= SNAP_DISTINCT:
        return tuple(map(float, distinct)), ()
    masses = []
    for i in np.flatnonzero(counts >= SNAP_MASS_SHARE * len(values)):
        gaps = [distinct[j] - distinct[i] for j in (i - 1, i + 1) if 0 <= j < len(distinct)]
        masses.append((float(distinct[i]), float(min(abs(g) for g in gaps)) / 2))
    return (), tuple(masses)


def _snap(x: np.ndarray, block: Block) -> np.ndarray:
    if block.support:
        support = np.asarray(block.support)
        index = np.clip(np.searchsorted(support, x), 1, len(support) - 1)
        left, right = support[index - 1], support[index]
        return np.where(np.abs(x - left) <= np.abs(right - x), left, right)
    for value, radius in block.masses:
        x = np.where(np.abs(x - value) < radius, value, x)
    return x
