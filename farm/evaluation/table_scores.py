"""A table's final scores on its held-out test split: the seeds' random forest (sklearn
defaults, 100 trees) trained on a trial's synthetic rows (TSTR), on the real train rows (TRTR,
the ceiling) and on both (does the output help as augmentation?), each tested on the test rows.
Nothing is chosen with these numbers: the trial a family reports was chosen on validation data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farm.data.prepare_tables import PreparedTable
from farm.metrics.tabular import utility

FOREST_TREES = 100


def forest_scores(train_X, train_y, test_X, test_y, seed: int) -> dict[str, float]:
    scores = utility(train_X, train_y, test_X, test_y, seed=seed, n_estimators=FOREST_TREES)
    return {"accuracy": scores["utility/accuracy"], "auc": scores["utility/auc"]}


def tstr(synthetic: pd.DataFrame, prepared: PreparedTable, seed: int) -> dict[str, float]:
    return forest_scores(*prepared.encode_xy(synthetic), *prepared.test_xy, seed)


def trtr(prepared: PreparedTable, seed: int) -> dict[str, float]:
    return forest_scores(*prepared.train_xy, *prepared.test_xy, seed)


def real_plus_synthetic(synthetic: pd.DataFrame, prepared: PreparedTable,
                        seed: int) -> dict[str, float]:
    """The forest on the real train rows plus the synthetic ones: does the output help as
    augmentation? (Compare with TRTR.)"""
    X_real, y_real = prepared.train_xy
    X_syn, y_syn = prepared.encode_xy(synthetic)
    return forest_scores(np.vstack([X_real, X_syn]), np.concatenate([y_real, y_syn]),
                         *prepared.test_xy, seed)
