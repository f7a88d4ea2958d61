"""Reading a user's table (ARFF or CSV) into a frame plus the schema the GANs need.

The schema says, per column, whether it is nominal (with its categories) or numeric (integer or
not, and how many decimals the source wrote), so that synthetic rows can be written back in the
original form. Missing values follow one documented policy (see `MISSING_POLICIES`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import arff
import numpy as np
import pandas as pd

from farm.infra.errors import DataError

MISSING_POLICIES = {
    "drop": "rows with any missing cell are dropped (the count is printed)",
    "impute": "numeric cells get the column median, nominal cells the most frequent category; "
    "rows with a missing target are still dropped",
    "error": "any missing cell is an error naming the column and row",
}
MISSING_MARKS = ("", "?", "NA", "NaN", "nan")  # a CSV cell reading as one of these is missing
# A column where at least this share of cells parse as numbers is numeric: the rest is a typo.
NUMERIC_SHARE = 0.9
MAX_DECIMALS = 6


@dataclass(frozen=True)
class Column:
    """One column of the schema."""

    name: str
    kind: Literal["numeric", "nominal"]
    categories: tuple[str, ...] = ()
    integer: bool = False
    decimals: int = 0


@dataclass(frozen=True)
class Table:
    """A loaded table: the frame (original column order) and its schema."""

    frame: pd.DataFrame
    columns: tuple[Column, ...]
    target: str
    path: str
    dropped_rows: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def numeric(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "numeric"]

    @property
    def nominal(self) -> list[str]:
        return [c.name for c in self.columns if c.kind == "nominal"]

    @property
    def labels(self) -> np.ndarray:
        return self.frame[self.target].to_numpy(dtype=object)


def load_table(path: str | Path, target: str | None = None, missing: str = "drop") -> Table:
    """Load an ARFF or CSV file; ``target`` defaults to the last column."""
    path = Path(path)
    if missing not in MISSING_POLICIES:
        raise DataError(f"unknown missing-value policy {missing!r}; use one of "
                        f"{', '.join(MISSING_POLICIES)}", where=path)
    if not path.is_file():
        raise DataError("no such file" if not path.exists() else "not a file", where=path)
    suffix = path.suffix.lower()
    if suffix == ".arff":
        frame, declared = _read_arff(path)
    elif suffix in (".csv", ".tsv", ".txt"):
        frame, declared = _read_csv(path, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise DataError(f"unsupported table format {suffix or '(none)'!r}; use .arff or .csv",
                        where=path)
    if frame.shape[1] < 2:
        raise DataError(f"needs at least 2 columns (features and a target), found {frame.shape[1]}",
                        where=path)
    if frame.empty:
        raise DataError("has no data rows", where=path)
    target = _pick_target(frame, target, path)
    frame, dropped, notes = _apply_missing_policy(frame, declared, target, missing, path)
    columns = tuple(_infer_column(frame[name], declared.get(name), name == target, path)
                    for name in frame.columns)
    frame = _normalise(frame, columns)
    if frame[target].nunique() < 2:
        raise DataError(f"target column {target!r} has a single class; a classifier needs two",
                        where=path)
    return Table(frame=frame, columns=columns, target=target, path=str(path),
                 dropped_rows=dropped, notes=tuple(notes))


def _read_arff(path: Path) -> tuple[pd.DataFrame, dict[str, object]]:
    """Parse with liac-arff, whose errors carry the line number."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text at byte {exc.start}", where=path) from None
    try:
        parsed = arff.loads(text)
    except arff.ArffException as exc:
        raise DataError(f"ARFF syntax error: {exc}", where=path) from None
    names = [name for name, _ in parsed["attributes"]]
    if len(set(names)) != len(names):
        raise DataError("ARFF header declares a column name twice", where=path)
    declared: dict[str, object] = {}
    for name, kind in parsed["attributes"]:
        if isinstance(kind, list):
            declared[name] = tuple(str(v) for v in kind)
        elif str(kind).upper() in ("NUMERIC", "REAL", "INTEGER"):
            declared[name] = str(kind).upper()
        else:  # STRING, DATE: treat by content
            declared[name] = None
    frame = pd.DataFrame(parsed["data"], columns=names, dtype=object)
    return frame, declared


def _read_csv(path: Path, sep: str) -> tuple[pd.DataFrame, dict[str, object]]:
    """Read every cell as text; types are inferred later so errors can name the cell."""
    try:
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError("empty file", where=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        last = str(exc).strip().splitlines()[-1]
        raise DataError(f"CSV syntax error: {last}", where=path) from None
    if len(set(frame.columns)) != len(frame.columns) or any(
            str(c).startswith("Unnamed:") for c in frame.columns):
        raise DataError("header row has empty or repeated column names", where=path)
    frame = frame.astype(object).map(
        lambda v: None if v is None or str(v).strip() in MISSING_MARKS else str(v).strip())
    return frame, {}


def _pick_target(frame: pd.DataFrame, target: str | None, path: Path) -> str:
    if target is None:
        return str(frame.columns[-1])
    if target not in frame.columns:
        shown = ", ".join(map(str, frame.columns[:12])) + (" ..." if frame.shape[1] > 12 else "")
        raise DataError(f"no column named {target!r}; columns are: {shown}", where=path)
    return target


def _apply_missing_policy(frame, declared, target, policy, path):
    """Apply the policy; returns the frame, the number of dropped rows and notes for the user."""
    missing = frame.isna()
    notes: list[str] = []
    if not missing.to_numpy().any():
        return frame, 0, notes
    if policy == "error":
        row, col = np.argwhere(missing.to_numpy())[0]
        raise DataError(f"missing value in column {frame.columns[col]!r} at data row {row + 1} "
                        "(policy 'error'; use --missing drop or impute)", where=path)
    before = len(frame)
    if policy == "drop":
        frame = frame[~missing.any(axis=1)]
    else:
        frame = frame[~missing[target]].copy()
        for name in frame.columns:
            if frame[name].isna().any():
                values = frame[name].dropna()
                numeric = pd.to_numeric(values, errors="coerce")
                if declared.get(name) in ("NUMERIC", "REAL", "INTEGER") or numeric.notna().all():
                    floats = numeric.astype(float)
                    fill = float(np.median(floats))
                    if np.all(floats == np.round(floats)):  # integer columns stay integer
                        fill = float(np.round(fill))
                else:
                    fill = values.astype(str).value_counts().index[0]
                frame[name] = frame[name].where(frame[name].notna(), fill)
    dropped = before - len(frame)
    if dropped:
        notes.append(f"dropped {dropped} of {before} rows with missing values (policy {policy!r})")
    if policy == "impute":
        notes.append(f"imputed {int(missing.to_numpy().sum())} missing cells")
    if len(frame) < 10:
        raise DataError(f"only {len(frame)} rows left after the missing-value policy {policy!r}",
                        where=path)
    return frame, dropped, notes  # index kept: errors below name the original data row


def _infer_column(values: pd.Series, declared, is_target: bool, path: Path) -> Column:
    """Decide a column's kind from the ARFF declaration, else from its content."""
    name = str(values.name)
    if isinstance(declared, tuple):
        seen = set(values.astype(str))
        unknown = seen - set(declared)
        if unknown:
            raise DataError(f"column {name!r} holds {sorted(unknown)[0]!r}, not among its "
                            "declared categories", where=path)
        return Column(name, "nominal", categories=declared)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna()
    numeric_declared = declared in ("NUMERIC", "REAL", "INTEGER")
    if bad.any() and (numeric_declared or (not is_target and 1 - bad.mean() >= NUMERIC_SHARE)):
        position = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"column {name!r} is numeric but data row {values.index[position] + 1} "
                        f"holds text {values.iloc[position]!r}", where=path)
    if is_target or bad.any():
        categories = tuple(sorted(set(values.astype(str)), key=_natural_key))
        return Column(name, "nominal", categories=categories)
    floats = numbers.astype(float).to_numpy()
    if not np.isfinite(floats).all():
        raise DataError(f"column {name!r} holds an infinite value", where=path)
    integer = declared == "INTEGER" or bool(np.all(floats == np.round(floats)))
    decimals = 0 if integer else _decimals(values)
    return Column(name, "numeric", integer=integer, decimals=decimals)


def _decimals(values: pd.Series) -> int:
    """The most decimals any cell was written with, so decoded values look like the source."""
    most = 0
    for text in values.astype(str):
        text = text.lower()
        if "e" in text:
            return MAX_DECIMALS
        if "." in text:
            most = max(most, len(text.split(".", 1)[1].rstrip("0")))
    return min(most, MAX_DECIMALS)


def _natural_key(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, math.inf, text)


def _normalise(frame: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """Typed frame: nominal as pandas strings, integer columns as int64, others as float64."""
    out = {}
    for col in columns:
        cells = frame[col.name]
        if col.kind == "nominal":
            out[col.name] = cells.astype(str)
        elif col.integer:
            out[col.name] = pd.to_numeric(cells).astype(float).round().astype(np.int64)
        else:
            out[col.name] = pd.to_numeric(cells).astype(np.float64)
    return pd.DataFrame(out, columns=[c.name for c in columns]).reset_index(drop=True)
