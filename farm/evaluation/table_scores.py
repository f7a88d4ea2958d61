"""A table's final scores on its held-out test split: the seeds' random forest (sklearn
defaults, 100 trees) trained on a trial's synthetic rows (TSTR), on the real train rows (TRTR,
the ceiling) and on both (does the output help as augmentation?), each tested on the test rows.
Nothing is chosen with these numbers: the trial a family reports was chosen on validation data.
The same rows also get the field's scores (farm/metrics/field.py) against the real train rows,
with the test rows as the holdout of TabSyn's DCR share; and SMOTE, fitted on the train rows,
gets all of it as the baseline row of the table's report.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from farm.data.prepare_tables import PreparedTable
from farm.evaluation.smote_baseline import smote_rows
from farm.infra.errors import DataError
from farm.metrics.field import field_report
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


def field_scores(synthetic: pd.DataFrame, prepared: PreparedTable, seed: int) -> dict[str, float]:
    """KSComplement ... detection_xgb against the real train rows, and the DCR share with the
    test rows as the holdout (TabSyn's protocol)."""
    data = prepared.trial_data
    nominal = data.nominal() + ([data.target] if data.target not in data.nominal() else [])
    return field_report(prepared.train_frame(), synthetic, data.numeric(), nominal,
                        prepared.train_enc, data.transformer.transform(synthetic),
                        holdout_enc=prepared.test_enc, seed=seed)


def smote_baseline(prepared: PreparedTable, rows: int, seed: int) -> dict:
    """SMOTE's `rows` rows from the train split, scored exactly as an exported trial is; where
    SMOTE cannot run (a class with one train row), the reason, and the run goes on."""
    started = time.perf_counter()
    data = prepared.trial_data
    try:
        synthetic = smote_rows(prepared.train_frame(), data.target, data.nominal(), rows, seed)
    except DataError as exc:
        return {"skipped": str(exc)}
    seconds = time.perf_counter() - started
    return {"method": "SMOTE (imbalanced-learn, 5 neighbours, fitted on the train split)",
            "rows": rows, "seconds": round(seconds, 2), "tstr": tstr(synthetic, prepared, seed),
            "real_plus_synthetic": real_plus_synthetic(synthetic, prepared, seed),
            "field": field_scores(synthetic, prepared, seed)}
