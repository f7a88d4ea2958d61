"""Quality metrics for synthetic tables, cheap enough to run every few epochs of a GAN trial.

Every metric compares synthetic rows with the real TRAIN split only (the test split stays
untouched until the final evaluation). Two representations of the same rows are used:

* decoded: a ``pd.DataFrame`` with the original columns (nominal columns hold strings),
  for per-column marginals, where categories and original units are what matter;
* encoded: a float ``[n, d]`` array in [0, 1] (one-hot nominal, min-max numeric) made with the
  same encoder for real and synthetic rows, for everything that needs a geometry
  (correlations, classifiers, nearest neighbours).

All functions are deterministic given ``seed`` and use small models (single-threaded where
sklearn lets us choose), so a full :func:`tabular_report` on ~700 real and ~700 synthetic rows
takes a fraction of a second on one core. Inputs must be finite: a diverged generator that
emits NaN/inf is reported as a ``ValueError`` (the caller decides how to score that trial)
rather than a silent NaN metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

from farm.metrics.field import column_shapes, dcr_ratio, dcr_share, ks_complement, pair_trends

__all__ = [
    "column_fidelity",
    "correlation_difference",
    "detection_auc",
    "distance_to_closest_record",
    "diversity",
    "tabular_report",
    "utility",
]

EXACT_COPY_TOL = 1e-6


# --------------------------------------------------------------------------- helpers


def _as_matrix(x, name: str, min_rows: int = 1) -> np.ndarray:
    """Return ``x`` as a finite float64 2-D array, or raise a ValueError naming ``name``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array [n, d], got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name}: need at least {min_rows} row(s), got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _as_pair(real, synth, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Validate two encoded arrays that must share one encoder (same width)."""
    r = _as_matrix(real, "real_enc", min_rows)
    s = _as_matrix(synth, "synth_enc", min_rows)
    if r.shape[1] != s.shape[1]:
        raise ValueError(
            f"real_enc has {r.shape[1]} columns but synth_enc has {s.shape[1]}: "
            "both must come from the same encoder"
        )
    return r, s


def _nominal_keys(series: pd.Series) -> pd.Series:
    """Categories as plain strings (missing -> '<NA>') so object and category dtypes compare."""
    s = series.astype(object)
    return s.where(s.notna(), "<NA>").astype(str)


def _ks(real: pd.Series, synth: pd.Series) -> float:
    """KS statistic of the non-missing values; 1.0 (maximal) when either side has none."""
    return 1.0 - ks_complement(real, synth)


def _tv(real: pd.Series, synth: pd.Series) -> float:
    """Total-variation distance 0.5 * sum |p - q| over the union of categories."""
    p = _nominal_keys(real).value_counts(normalize=True)
    q = _nominal_keys(synth).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return float(0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


# --------------------------------------------------------------------------- metrics


def column_fidelity(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    numeric: Sequence[str],
    nominal: Sequence[str],
) -> dict[str, float]:
    """How well each column's marginal distribution is reproduced, on decoded rows.

    Why: marginals are the first thing a GAN gets wrong (mode collapse on a category, a numeric
    column squeezed into a narrow range) and are cheap and interpretable per column.

    Numeric columns use the two-sample Kolmogorov-Smirnov statistic (max CDF gap, in [0, 1]);
    nominal columns use the total-variation distance of category frequencies (in [0, 1];
    a category seen on only one side counts with frequency 0 on the other). Missing values
    are dropped for KS and treated as their own category for TV.

    Returns ``fidelity/ks_mean`` (only when there are numeric columns), ``fidelity/tv_mean``
    (only when there are nominal columns) and ``fidelity/score`` = 1 - mean over all columns of
    their distance: in [0, 1], 1 = identical marginals.
    """
    numeric, nominal = list(numeric), list(nominal)
    if not numeric and not nominal:
        raise ValueError("column_fidelity: no numeric or nominal columns given")
    for name, df in (("real", real), ("synth", synth)):
        missing = [c for c in numeric + nominal if c not in df.columns]
        if missing:
            raise ValueError(f"column_fidelity: {name} lacks columns {missing}")
        if len(df) == 0:
            raise ValueError(f"column_fidelity: {name} has no rows")

    ks = [_ks(real[c], synth[c]) for c in numeric]
    tv = [_tv(real[c], synth[c]) for c in nominal]
    out: dict[str, float] = {}
    if ks:
        out["fidelity/ks_mean"] = float(np.mean(ks))
    if tv:
        out["fidelity/tv_mean"] = float(np.mean(tv))
    out["fidelity/score"] = float(1.0 - np.mean(ks + tv))
    return out


def _correlation_matrix(x: np.ndarray) -> np.ndarray:
    """Pearson correlations with 0 (not NaN) wherever a column is constant."""
    centred = x - x.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    ok = norms > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))
    z = np.zeros_like(centred)
    z[:, ok] = centred[:, ok] / norms[ok]
    return np.clip(z.T @ z, -1.0, 1.0)


def correlation_difference(real_enc, synth_enc) -> float:
    """Mean absolute difference of the pairwise Pearson correlation matrices (encoded rows).

    Why: marginals can be perfect while the dependencies between columns (the part that makes
    a table useful) are lost; this catches that cheaply.

    Averaged over the off-diagonal pairs (i < j) of the ``d`` encoded columns; a column that is
    constant on either side has correlation 0 with everything on that side (instead of NaN).
    0 = identical correlation structure, 2 = maximally different. Returns 0.0 for ``d < 2``.
    """
    r, s = _as_pair(real_enc, synth_enc)
    d = r.shape[1]
    if d < 2:
        return 0.0
    iu = np.triu_indices(d, k=1)
    diff = np.abs(_correlation_matrix(r) - _correlation_matrix(s))[iu]
    return float(diff.mean())


def _detector(kind: str, seed: int):
    if kind == "hgb":
        # Few shallow trees: catches per-column shape differences (e.g. collapsed variance)
        # that a linear model cannot, and stays cheap. Early stopping off: deterministic cost.
        return HistGradientBoostingClassifier(
            max_iter=30, max_depth=3, learning_rate=0.2, early_stopping=False, random_state=seed
        )
    if kind == "logistic":
        return LogisticRegression(max_iter=500, C=1.0)
    raise ValueError(f"detection_auc: unknown classifier {kind!r} (use 'hgb' or 'logistic')")


def detection_auc(
    real_enc, synth_enc, seed: int = 0, folds: int = 3, classifier: str = "hgb"
) -> float:
    """Cross-validated ROC AUC of a classifier separating real (label 0) from synthetic (1).

    Why: a single number for "can a model tell the rows apart", covering marginals and
    interactions at once; it is the metric that should fall as the GAN improves.

    Both sides are subsampled (seeded, without replacement) to the same count, min of the two,
    so the AUC is not skewed by class imbalance; the AUC is averaged over ``folds`` stratified
    folds. The raw AUC is reported (not ``max(auc, 1 - auc)``): 0.5 = indistinguishable,
    1.0 = trivially detected; values clearly below 0.5 only arise from noise on small samples
    (the classifier is fitted out-of-fold, so it cannot systematically invert). ``classifier``
    is ``"hgb"`` (default, a small HistGradientBoosting) or ``"logistic"``.
    """
    r, s = _as_pair(real_enc, synth_enc)
    n = min(len(r), len(s))
    if n < folds:
        raise ValueError(f"detection_auc: need at least folds={folds} rows on each side, got {n}")
    rng = np.random.default_rng(seed)
    r = r[rng.choice(len(r), size=n, replace=False)]
    s = s[rng.choice(len(s), size=n, replace=False)]
    x = np.vstack([r, s])
    y = np.r_[np.zeros(n, dtype=int), np.ones(n, dtype=int)]

    aucs = []
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in cv.split(x, y):
        model = _detector(classifier, seed).fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return float(np.mean(aucs))


def _auc(val_y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Binary AUC of the positive (larger) class, or macro one-vs-rest over ``val_y``'s classes.

    ``proba[:, k]`` is the score of ``classes[k]``. NaN when ``val_y`` holds a single class
    (AUC undefined).
    """
    present = np.unique(val_y)
    if present.size < 2:
        return float("nan")
    if classes.size == 2 and present.size == 2:
        return float(roc_auc_score(val_y == classes[1], proba[:, 1]))
    per_class = []
    for c in present:
        k = np.flatnonzero(classes == c)
        scores = proba[:, k[0]] if k.size else np.zeros(len(val_y))
        per_class.append(roc_auc_score(val_y == c, scores))
    return float(np.mean(per_class))


def utility(
    synth_X_enc,
    synth_y,
    val_X_enc,
    val_y,
    seed: int = 0,
    n_estimators: int = 50,
) -> dict[str, float]:
    """Train on synthetic, test on real (TSTR): does the synthetic table teach a classifier?

    Why: the downstream use of a synthetic table is usually to fit a model; this measures that
    directly. A random forest (``n_estimators`` trees, single-threaded, seeded) is fitted on
    the synthetic rows/labels and scored on a real validation slice (taken from the TRAIN
    split, never the test split).

    Returns ``utility/accuracy`` and ``utility/auc``: for two classes the AUC of the positive
    (larger-sorted) class, otherwise the macro one-vs-rest AUC over the validation classes
    (a class the synthetic data never produced gets score 0). If the synthetic labels hold a
    single class, the constant prediction is scored: accuracy = that class's share of
    ``val_y`` and AUC = 0.5. If ``val_y`` itself holds a single class the AUC is NaN.
    """
    sx = _as_matrix(synth_X_enc, "synth_X_enc")
    vx = _as_matrix(val_X_enc, "val_X_enc")
    sy, vy = np.asarray(synth_y).ravel(), np.asarray(val_y).ravel()
    if sx.shape[1] != vx.shape[1]:
        raise ValueError(
            f"synth_X_enc has {sx.shape[1]} columns but val_X_enc has {vx.shape[1]}"
        )
    if len(sy) != len(sx) or len(vy) != len(vx):
        raise ValueError("utility: X and y lengths differ")

    classes = np.unique(sy)
    if classes.size == 1:
        return {"utility/accuracy": float(np.mean(vy == classes[0])), "utility/auc": 0.5}

    model = RandomForestClassifier(
        n_estimators=n_estimators, max_features="sqrt", n_jobs=1, random_state=seed
    ).fit(sx, sy)
    proba = model.predict_proba(vx)
    pred = model.classes_[np.argmax(proba, axis=1)]
    return {
        "utility/accuracy": float(np.mean(pred == vy)),
        "utility/auc": _auc(vy, proba, model.classes_),
    }


def distance_to_closest_record(real_enc, synth_enc, seed: int = 0) -> dict[str, float]:
    """Privacy/memorisation check: how close is each synthetic row to its nearest real row?

    Why: a GAN that memorises its training rows scores perfectly on fidelity and detection;
    DCR exposes it. For each synthetic row the Euclidean distance to its nearest real row
    (encoded space) gives ``dcr/median``, ``dcr/p05`` (5th percentile) and
    ``dcr/exact_copies`` (share of synthetic rows within 1e-6 of a real row).

    ``dcr/real_median`` is the scale to read them against: the median distance from a random
    half of the real rows (seeded) to their nearest neighbour in the other half. Because that
    reference set is half as large, it is slightly larger than a true real-vs-full-real figure;
    synthetic medians far below it suggest copying, far above it suggest off-manifold samples.
    NaN when there are fewer than 2 real rows.
    """
    r, s = _as_pair(real_enc, synth_enc)
    nn = NearestNeighbors(n_neighbors=1, algorithm="auto").fit(r)
    dist = nn.kneighbors(s, return_distance=True)[0][:, 0]

    real_median = float("nan")
    if len(r) >= 2:
        perm = np.random.default_rng(seed).permutation(len(r))
        half = len(r) // 2
        query, ref = r[perm[:half]], r[perm[half:]]
        d_rr = NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(query)[0][:, 0]
        real_median = float(np.median(d_rr))

    return {
        "dcr/median": float(np.median(dist)),
        "dcr/p05": float(np.percentile(dist, 5)),
        "dcr/exact_copies": float(np.mean(dist <= EXACT_COPY_TOL)),
        "dcr/real_median": real_median,
    }


def diversity(synth_enc, seed: int = 0, max_rows: int = 500) -> float:
    """Mean pairwise Euclidean distance between synthetic rows (encoded space).

    Why: the cheapest mode-collapse alarm; a collapsing generator's samples huddle together
    and this drops towards 0. It is the raw synthetic value (not normalised by the real
    data's spread); compare it with the same function applied to the real rows. At most
    ``max_rows`` rows are used (seeded subsample) to keep the O(n^2) cost bounded. NaN with
    fewer than 2 rows.
    """
    s = _as_matrix(synth_enc, "synth_enc")
    if len(s) < 2:
        return float("nan")
    if len(s) > max_rows:
        s = s[np.random.default_rng(seed).choice(len(s), size=max_rows, replace=False)]
    return float(pdist(s, metric="euclidean").mean())


def tabular_report(
    real_df: pd.DataFrame,
    synth_df: pd.DataFrame,
    real_enc,
    synth_enc,
    numeric: Sequence[str],
    nominal: Sequence[str],
    target_col: str | None,
    val_X_enc,
    val_y,
    synth_y,
    seed: int = 0,
    *,
    synth_X_enc=None,
    folds: int = 3,
    n_estimators: int = 50,
    holdout_enc=None,
) -> dict[str, float]:
    """All metrics above in one flat ``{name: float}`` dict, ready for ``ray.tune.report``.

    Why: one call per evaluation epoch keeps every trial's reported keys identical.

    ``real_df``/``real_enc`` are the real TRAIN rows; ``synth_df``/``synth_enc`` the same
    synthetic rows decoded/encoded. ``target_col`` is included in the fidelity marginals
    (as nominal) when it is not already listed in ``numeric``/``nominal`` and both frames
    have it. Utility trains on ``synth_X_enc`` (default: ``synth_enc`` itself) with labels
    ``synth_y`` and scores on ``val_X_enc``/``val_y``; when ``synth_enc`` also encodes the
    target, pass ``synth_X_enc`` = ``synth_enc`` without the target's columns (encoded like
    ``val_X_enc``), otherwise the label leaks into the features.

    Keys: ``fidelity/ks_mean``, ``fidelity/tv_mean`` (each when that column kind exists),
    ``fidelity/score``, ``correlation_diff``, ``detection_auc``, ``utility/accuracy``,
    ``utility/auc``, ``dcr/median``, ``dcr/p05``, ``dcr/exact_copies``, ``dcr/real_median``,
    ``diversity``; and under the field's names (farm/metrics/field.py) ``KSComplement/<column>``,
    ``TVComplement/<column>``, their means, ``column_shapes``, ``CorrelationSimilarity``,
    ``ContingencySimilarity``, ``column_pair_trends``, and ``dcr_share`` and ``dcr/ratio``
    (the field's ``dcr_ratio``) against ``holdout_enc`` (real rows encoded like ``real_enc``
    that the generator did not train on) when it is given. XGBoost detection is left to the
    final scoring: it costs more than all of these together.
    """
    numeric, nominal = list(numeric), list(nominal)
    if (
        target_col is not None
        and target_col not in numeric
        and target_col not in nominal
        and target_col in real_df.columns
        and target_col in synth_df.columns
    ):
        nominal.append(target_col)

    report: dict[str, float] = {}
    report.update(column_fidelity(real_df, synth_df, numeric, nominal))
    report["correlation_diff"] = correlation_difference(real_enc, synth_enc)
    report["detection_auc"] = detection_auc(real_enc, synth_enc, seed=seed, folds=folds)
    features = synth_enc if synth_X_enc is None else synth_X_enc
    report.update(
        utility(features, synth_y, val_X_enc, val_y, seed=seed, n_estimators=n_estimators)
    )
    report.update(distance_to_closest_record(real_enc, synth_enc, seed=seed))
    report["diversity"] = diversity(synth_enc, seed=seed)
    report.update(column_shapes(real_df, synth_df, numeric, nominal))
    report.update(pair_trends(real_df, synth_df, numeric, nominal))
    if holdout_enc is not None:
        report["dcr_share"] = dcr_share(real_enc, holdout_enc, synth_enc, seed=seed)
        # the benchmark's privacy figure with the val rows as the fresh ones: select/score's guard
        report["dcr/ratio"] = dcr_ratio(real_enc, holdout_enc, synth_enc)
    return {k: float(v) for k, v in report.items()}
