"""Table quality under the field's names, so a published table can sit beside the farm's.

Same definitions as the libraries that named them (checked against SDMetrics itself by
bench/field_metrics.py):

* `KSComplement/<column>` (numeric) and `TVComplement/<column>` (nominal), SDMetrics' column
  shapes: 1 - the two-sample Kolmogorov-Smirnov statistic, 1 - the total-variation distance of
  the category frequencies (missing values dropped). `KSComplement` and `TVComplement` are their
  means, `column_shapes` the mean over every column.
* `CorrelationSimilarity`: for each pair of numeric columns, 1 - |r_real - r_synth| / 2 with
  Pearson's r; the mean over pairs (a pair constant on either side is left out, as SDMetrics
  leaves it out of its report).
* `ContingencySimilarity`: for each other pair, 1 - the total-variation distance of the two
  columns' joint frequencies, a numeric column cut into 10 bins of equal width over the real
  values' range (the outer bins open, SDMetrics' `discretize_column`); the mean over pairs.
  `column_pair_trends` is the mean over every pair of either kind.
* `detection_xgb`: synthcity's XGBoost detection, the mean ROC AUC over 3 shuffled stratified
  folds of an XGBoost classifier (its defaults) telling the real rows from the synthetic ones;
  0.5 = indistinguishable.
* `dcr_share`: TabSyn's DCR score, the share of synthetic rows whose closest real train row is
  nearer than their closest holdout row, the two real sets of equal size (the larger one
  subsampled); 0.5 = the synthetic rows sit no closer to the train rows than fresh rows do.
  A tie counts a half.
* `dcr_ratio`: the synthetic rows' median distance to their closest train row over the holdout
  rows' own (1 = as far as fresh rows; the benchmark's privacy target is at least 0.9).

Every function takes real and synthetic rows as they are everywhere else in the farm: decoded
frames for the per-column and per-pair scores, rows encoded by one transformer for the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import NearestNeighbors

CONTINGENCY_BINS = 10


def _numbers(column: pd.Series) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def ks_complement(real: pd.Series, synth: pd.Series) -> float:
    """1 - the KS statistic of the non-missing values (0 when either side has none)."""
    r, s = _numbers(real), _numbers(synth)
    if r.size == 0 or s.size == 0:
        return 0.0
    return float(1.0 - ks_2samp(r, s, method="asymp").statistic)


def _categories(column: pd.Series) -> pd.Series:
    """Non-missing values as strings, so object and category columns compare alike."""
    return column.dropna().astype(str)


def tv_complement(real: pd.Series, synth: pd.Series) -> float:
    """1 - 0.5 * sum |p - q| over the categories either side holds (missing values dropped)."""
    p = _categories(real).value_counts(normalize=True)
    q = _categories(synth).value_counts(normalize=True)
    if p.empty or q.empty:
        return 0.0
    p, q = p.align(q, fill_value=0.0)
    return float(1.0 - 0.5 * np.abs(p.to_numpy() - q.to_numpy()).sum())


def column_shapes(real: pd.DataFrame, synth: pd.DataFrame, numeric: Sequence[str],
                  nominal: Sequence[str]) -> dict[str, float]:
    """KSComplement per numeric column, TVComplement per nominal one, their means, and the mean
    over every column (`column_shapes`)."""
    out: dict[str, float] = {}
    for c in numeric:
        out[f"KSComplement/{c}"] = ks_complement(real[c], synth[c])
    for c in nominal:
        out[f"TVComplement/{c}"] = tv_complement(real[c], synth[c])
    for name in ("KSComplement", "TVComplement"):
        values = [v for k, v in out.items() if k.startswith(name + "/")]
        if values:
            out[name] = float(np.mean(values))
    every = [v for k, v in out.items() if "/" in k]
    if every:
        out["column_shapes"] = float(np.mean(every))
    return out


def _codes(real: pd.Series, synth: pd.Series, numeric: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Both columns as small integer codes over one vocabulary: a numeric column's bin (real's
    10 equal-width bins, outer ones open), a nominal column's category; missing is a code too."""
    if numeric:
        r = pd.to_numeric(real, errors="coerce").to_numpy(dtype=np.float64)
        s = pd.to_numeric(synth, errors="coerce").to_numpy(dtype=np.float64)
        finite = r[np.isfinite(r)]
        edges = np.histogram_bin_edges(finite if finite.size else [0.0], bins=CONTINGENCY_BINS)
        edges[0], edges[-1] = -np.inf, np.inf
        # np.digitize gives 1..bins for finite values; NaN lands past the last edge
        return np.digitize(r, edges), np.digitize(s, edges), CONTINGENCY_BINS + 2
    both = pd.concat([real, synth], ignore_index=True).astype(object)
    codes, uniques = pd.factorize(both.where(both.notna(), "\0missing").astype(str))
    return codes[:len(real)], codes[len(real):], len(uniques)


def _joint_tv(a_real, b_real, a_synth, b_synth, kb: int, size: int) -> float:
    real = np.bincount(a_real * kb + b_real, minlength=size) / len(a_real)
    synth = np.bincount(a_synth * kb + b_synth, minlength=size) / len(a_synth)
    return float(0.5 * np.abs(real - synth).sum())


def _correlation_similarity(r: np.ndarray, s: np.ndarray) -> float:
    """1 - |r_real - r_synth| / 2 over the rows where both columns are present; NaN when a
    column is constant on either side."""
    scores = []
    for pair in (r, s):
        keep = np.isfinite(pair).all(axis=1)
        x, y = pair[keep, 0], pair[keep, 1]
        if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
            return float("nan")
        scores.append(np.corrcoef(x, y)[0, 1])
    return float(1.0 - abs(scores[0] - scores[1]) / 2.0)


def pair_trends(real: pd.DataFrame, synth: pd.DataFrame, numeric: Sequence[str],
                nominal: Sequence[str]) -> dict[str, float]:
    """CorrelationSimilarity over the numeric pairs, ContingencySimilarity over the others, and
    `column_pair_trends` over all of them (each key only where such a pair exists)."""
    numeric, columns = set(numeric), list(numeric) + list(nominal)
    codes = {c: _codes(real[c], synth[c], c in numeric) for c in columns}
    values = {c: (pd.to_numeric(real[c], errors="coerce").to_numpy(dtype=np.float64),
                  pd.to_numeric(synth[c], errors="coerce").to_numpy(dtype=np.float64))
              for c in numeric}
    correlation, contingency = [], []
    for a, b in combinations(columns, 2):
        if a in numeric and b in numeric:
            score = _correlation_similarity(np.column_stack([values[a][0], values[b][0]]),
                                            np.column_stack([values[a][1], values[b][1]]))
            if np.isfinite(score):
                correlation.append(score)
            continue
        (ar, as_, ka), (br, bs, kb) = codes[a], codes[b]
        contingency.append(1.0 - _joint_tv(ar, br, as_, bs, kb, ka * kb))
    out: dict[str, float] = {}
    if correlation:
        out["CorrelationSimilarity"] = float(np.mean(correlation))
    if contingency:
        out["ContingencySimilarity"] = float(np.mean(contingency))
    if correlation or contingency:
        out["column_pair_trends"] = float(np.mean(correlation + contingency))
    return out


def detection_xgb(real_enc, synth_enc, seed: int = 0, folds: int = 3) -> float:
    """synthcity's `detection_xgb`: all rows of both sides, XGBoost at its defaults (one
    thread here), the mean out-of-fold ROC AUC."""
    from xgboost import XGBClassifier  # a second or so to import: only where it is used

    real, synth = np.asarray(real_enc, np.float64), np.asarray(synth_enc, np.float64)
    x = np.vstack([real, synth])
    y = np.r_[np.zeros(len(real), dtype=int), np.ones(len(synth), dtype=int)]
    aucs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = XGBClassifier(n_jobs=1, verbosity=0, random_state=seed).fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
    return float(np.mean(aucs))


def _nearest(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    return NearestNeighbors(n_neighbors=1).fit(reference).kneighbors(query)[0][:, 0]


def dcr_share(train_enc, holdout_enc, synth_enc, seed: int = 0) -> float:
    """TabSyn's DCR score: the share of synthetic rows nearer to the train rows than to the
    holdout rows, both real sets cut to the smaller one's size (seeded); ties count a half."""
    train, holdout = np.asarray(train_enc, np.float64), np.asarray(holdout_enc, np.float64)
    synth = np.asarray(synth_enc, np.float64)
    n = min(len(train), len(holdout))
    rng = np.random.default_rng(seed)
    train = train[rng.choice(len(train), n, replace=False)]
    holdout = holdout[rng.choice(len(holdout), n, replace=False)]
    to_train, to_holdout = _nearest(train, synth), _nearest(holdout, synth)
    return float(np.mean((to_train < to_holdout) + 0.5 * (to_train == to_holdout)))


def dcr_ratio(train_enc, holdout_enc, synth_enc) -> float:
    """The synthetic rows' median distance to their closest train row over the holdout rows'
    own: 1 = as far from the train rows as fresh real rows, near 0 = copies (the privacy
    figure the benchmark's target reads, >= 0.9)."""
    train = np.asarray(train_enc, np.float64)
    fresh = np.median(_nearest(train, np.asarray(holdout_enc, np.float64)))
    synth = np.median(_nearest(train, np.asarray(synth_enc, np.float64)))
    return float(synth / fresh) if fresh > 0 else float("nan")


def field_report(real: pd.DataFrame, synth: pd.DataFrame, numeric: Sequence[str],
                 nominal: Sequence[str], real_enc, synth_enc, holdout_enc=None,
                 seed: int = 0) -> dict[str, float]:
    """Every score above in one flat dict (`dcr_share` and `dcr_ratio` only with a holdout)."""
    out = column_shapes(real, synth, numeric, nominal)
    out.update(pair_trends(real, synth, numeric, nominal))
    out["detection_xgb"] = detection_xgb(real_enc, synth_enc, seed)
    if holdout_enc is not None:
        out["dcr_share"] = dcr_share(real_enc, holdout_enc, synth_enc, seed)
        out["dcr_ratio"] = dcr_ratio(real_enc, holdout_enc, synth_enc)
    return out
