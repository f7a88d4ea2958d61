"""The black box as arrays: the same answers as sklearn's forest, to the last bit, and through a
weights-only torch archive."""

from __future__ import annotations

import io

import numpy as np
import torch
from sklearn.ensemble import RandomForestClassifier

from farm.models.forest_arrays import ArrayForest


def _forest(y=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, (300, 6)) / 4.0  # ties and repeated values, as encoded tables have
    y = np.where(X[:, 0] + X[:, 3] + rng.normal(0, 0.3, 300) > 1, "bad", "good") if y is None else y
    return X, RandomForestClassifier(30, random_state=seed, n_jobs=1).fit(X, y)


def test_answers_exactly_as_sklearn_on_thresholds_and_between_them():
    X, forest = _forest()
    arrays = ArrayForest.from_sklearn(forest)
    rng = np.random.default_rng(1)
    queries = np.vstack([X, rng.uniform(-0.2, 1.2, (500, 6))])
    on_threshold = rng.uniform(0, 1, (200, 6))  # values exactly on split points
    inner = arrays.left >= 0
    for row, node in zip(on_threshold, rng.choice(np.flatnonzero(inner), 200)):
        row[arrays.feature[node]] = arrays.threshold[node]
    for Q in (queries, on_threshold, queries.astype(np.float32)):
        assert np.array_equal(arrays.predict_proba(Q), forest.predict_proba(Q))
    assert list(arrays.classes_) == ["bad", "good"]


def test_survives_a_weights_only_archive():
    X, forest = _forest(seed=2)
    buffer = io.BytesIO()
    arrays = ArrayForest.from_sklearn(forest).arrays()
    torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    back = ArrayForest.from_arrays({k: v.numpy() for k, v in loaded.items()}, forest.classes_)
    assert np.array_equal(back.predict_proba(X), forest.predict_proba(X))


def test_a_forest_of_single_leaves():
    X, forest = _forest(y=np.array(["good"] * 300))
    assert np.array_equal(ArrayForest.from_sklearn(forest).predict_proba(X),
                          forest.predict_proba(X))
