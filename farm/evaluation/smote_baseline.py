"""SMOTE used as a generator: the interpolation baseline every table's report shows.

TabDDPM's baseline (Kotelnikov et al. 2023): each new row lies on the segment between a real
train row and one of its 5 nearest neighbours of the same class (imbalanced-learn's SMOTE, or
SMOTENC when the table has nominal columns, which takes the neighbours' most frequent category).
It is fitted on the same train rows as the farm's exported generators and scored by the same
code, so the user can see what a GAN adds over interpolating between neighbours, and at what
price in privacy: interpolated rows sit close to real ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from farm.infra.errors import DataError

NEIGHBOURS = 5


def smote_rows(frame: pd.DataFrame, target: str, nominal: list[str], n: int,
               seed: int) -> pd.DataFrame:
    """`n` new rows in `frame`'s schema, every class grown by its share of `n`."""
    from imblearn.over_sampling import SMOTE, SMOTENC

    X, y = frame.drop(columns=[target]), frame[target].astype(str)
    counts = y.value_counts()
    if counts.min() < 2:
        raise DataError(f"class {counts.idxmin()!r} of {target!r} has one row: SMOTE needs two "
                        "rows of every class")
    extra = {c: int(round(n * k / len(y))) for c, k in counts.items()}
    extra[counts.idxmax()] += n - sum(extra.values())  # exactly n in all
    k = min(NEIGHBOURS, int(counts.min()) - 1)
    strategy = {c: int(counts[c]) + extra[c] for c in counts.index}
    # nominal columns go in as integer codes: imbalanced-learn 0.14.2 given pandas 3's string
    # columns returns categories that none of the neighbours holds
    nominal_columns = [c for c in X.columns if c in set(nominal)]
    vocabulary = {}
    for c in nominal_columns:
        X[c], vocabulary[c] = pd.factorize(X[c])
    at = [X.columns.get_loc(c) for c in nominal_columns]
    sampler = (SMOTENC(categorical_features=at, sampling_strategy=strategy, random_state=seed,
                       k_neighbors=k) if at else
               SMOTE(sampling_strategy=strategy, random_state=seed, k_neighbors=k))
    X_new, y_new = sampler.fit_resample(X.to_numpy(dtype=np.float64), y.to_numpy())
    rows = pd.DataFrame(X_new[len(X):], columns=X.columns)  # the new rows come last
    for c in X.columns:
        if c in vocabulary:
            rows[c] = vocabulary[c][rows[c].round().astype(int)]
        elif pd.api.types.is_integer_dtype(frame[c]):
            rows[c] = rows[c].round().astype(frame[c].dtype)
    labels = {str(v): v for v in frame[target].unique()}
    rows[target] = [labels[v] for v in y_new[len(X):]]
    return rows[list(frame.columns)]
