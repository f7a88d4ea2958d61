"""From a trial's best checkpoint to a synthetic CSV in the original schema, and its TSTR score.

The seeds' random forest (sklearn defaults, 100 trees) is trained on the synthetic rows and on
the real train rows (TRTR, the ceiling), both tested on the held-out real test split: the one
place in the farm where the test split is used.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from farm.families import kind_of, params_from
from farm.metrics.tabular import utility
from farm.tables import PreparedTable
from farm.train.trainable import load_state

FOREST_TREES = 100


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """A run that dies midway leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".csv.tmp")
    os.close(fd)
    try:
        frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sample_from_checkpoint(spec: dict, checkpoint_dir: str | Path, prepared: PreparedTable,
                           rows: int) -> pd.DataFrame:
    """Rebuild the trial's generator from its checkpoint (weights only) and decode samples."""
    import torch

    kind = kind_of(spec["kind"])
    params = params_from(spec["kind"], spec["params"])
    pair = kind.build(params, prepared.trial_data, torch.device("cpu"))
    pair.generator.load_state_dict(load_state(checkpoint_dir)["generator"])
    return kind.export(pair.generator, params, prepared.trial_data, rows, spec["seed"] + 7)


def forest_scores(train_X, train_y, test_X, test_y, seed: int) -> dict[str, float]:
    scores = utility(train_X, train_y, test_X, test_y, seed=seed, n_estimators=FOREST_TREES)
    return {"accuracy": scores["utility/accuracy"], "auc": scores["utility/auc"]}


def tstr(synthetic: pd.DataFrame, prepared: PreparedTable, seed: int) -> dict[str, float]:
    X, y = prepared.encode_xy(synthetic)
    test_X, test_y = prepared.encode_xy(prepared.test_frame())
    return forest_scores(X, y, test_X, test_y, seed)


def trtr(prepared: PreparedTable, seed: int) -> dict[str, float]:
    X, y = prepared.encode_xy(prepared.train_frame())
    test_X, test_y = prepared.encode_xy(prepared.test_frame())
    return forest_scores(X, y, test_X, test_y, seed)
