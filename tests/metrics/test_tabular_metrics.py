"""Tests for farm.metrics.tabular on the real German credit / diabetes tables and toy frames."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.io import arff

from farm.metrics.field import dcr_ratio
from farm.metrics.tabular import (
    column_fidelity,
    correlation_difference,
    detection_auc,
    distance_to_closest_record,
    diversity,
    tabular_report,
    utility,
)

# --------------------------------------------------------------------------- helpers


def _load_arff(path) -> tuple[pd.DataFrame, list[str], list[str]]:
    data, meta = arff.loadarff(path)
    df = pd.DataFrame(data)
    numeric, nominal = [], []
    for name, kind in zip(meta.names(), meta.types()):
        if kind == "nominal":
            df[name] = df[name].str.decode("utf-8")
            nominal.append(name)
        else:
            numeric.append(name)
    return df, numeric, nominal


class _Encoder:
    """Stand-in for the project's encoder: one-hot nominal, min-max numeric, fit on real."""

    def __init__(self, df: pd.DataFrame, numeric: list[str], nominal: list[str]):
        self.numeric, self.nominal = numeric, nominal
        self.lo = df[numeric].min()
        self.span = (df[numeric].max() - self.lo).replace(0, 1)
        self.cats = {c: sorted(df[c].unique()) for c in nominal}

    def __call__(self, df: pd.DataFrame) -> np.ndarray:
        parts = [((df[self.numeric] - self.lo) / self.span).clip(0, 1).to_numpy()]
        for c in self.nominal:
            parts.append((df[c].to_numpy()[:, None] == np.array(self.cats[c])[None, :]))
        return np.hstack(parts).astype(np.float32)


@pytest.fixture(scope="module")
def german(shared_data):
    df, numeric, nominal = _load_arff(shared_data / "german_credit" / "german_credit.arff")
    features = [c for c in nominal if c != "class"]
    return df, numeric, features


@pytest.fixture(scope="module")
def german_halves(german):
    """Two disjoint random halves of German credit, encoded (features + target) with one encoder."""
    df, numeric, nominal = german
    perm = np.random.default_rng(123).permutation(len(df))
    a, b = df.iloc[perm[:500]].reset_index(drop=True), df.iloc[perm[500:]].reset_index(drop=True)
    enc_full = _Encoder(a, numeric, nominal + ["class"])
    enc_x = _Encoder(a, numeric, nominal)
    return a, b, enc_full, enc_x


def _noisy_copy(df: pd.DataFrame, numeric, nominal, seed=0) -> pd.DataFrame:
    """A visibly bad 'GAN': numeric columns shifted and noisy, nominal columns uniform."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    for c in numeric:
        sd = df[c].std() or 1.0
        out[c] = df[c] + 1.5 * sd + rng.normal(0, sd, len(df))
    for c in nominal:
        out[c] = rng.choice(sorted(df[c].unique()), size=len(df))
    return out


# --------------------------------------------------------------------------- column_fidelity


def test_fidelity_identical_is_perfect(german):
    df, numeric, nominal = german
    out = column_fidelity(df, df.copy(), numeric, nominal)
    assert set(out) == {"fidelity/ks_mean", "fidelity/tv_mean", "fidelity/score"}
    assert out["fidelity/ks_mean"] == pytest.approx(0.0, abs=1e-12)
    assert out["fidelity/tv_mean"] == pytest.approx(0.0, abs=1e-12)
    assert out["fidelity/score"] == pytest.approx(1.0, abs=1e-12)


def test_fidelity_drops_for_bad_synthetic(german):
    df, numeric, nominal = german
    out = column_fidelity(df, _noisy_copy(df, numeric, nominal), numeric, nominal)
    assert out["fidelity/ks_mean"] > 0.3
    assert out["fidelity/tv_mean"] > 0.1
    assert 0.0 <= out["fidelity/score"] < 0.8


def test_tv_disjoint_categories_is_one():
    real = pd.DataFrame({"c": ["a", "b", "a", "b"]})
    synth = pd.DataFrame({"c": ["x", "y", "y", "y"]})
    out = column_fidelity(real, synth, numeric=[], nominal=["c"])
    assert out["fidelity/tv_mean"] == pytest.approx(1.0)
    assert out["fidelity/score"] == pytest.approx(0.0)
    assert "fidelity/ks_mean" not in out


def test_tv_counts_unseen_category_and_mixes_dtypes():
    real = pd.DataFrame({"c": pd.Categorical(["a", "a", "b", "b"])})
    synth = pd.DataFrame({"c": ["a", "a", "a", "z"]})  # object dtype, one unseen category
    out = column_fidelity(real, synth, numeric=[], nominal=["c"])
    # p = {a: .5, b: .5, z: 0}, q = {a: .75, b: 0, z: .25} -> 0.5 * (.25 + .5 + .25)
    assert out["fidelity/tv_mean"] == pytest.approx(0.5)


def test_ks_only_and_missing_column():
    real = pd.DataFrame({"x": np.arange(100.0)})
    synth = pd.DataFrame({"x": np.arange(100.0) + 1000})
    out = column_fidelity(real, synth, numeric=["x"], nominal=[])
    assert out["fidelity/ks_mean"] == pytest.approx(1.0)
    assert "fidelity/tv_mean" not in out
    with pytest.raises(ValueError, match="lacks columns"):
        column_fidelity(real, synth.rename(columns={"x": "y"}), numeric=["x"], nominal=[])


# --------------------------------------------------------------------------- correlation_difference


def test_correlation_identical_is_zero(german_halves):
    a, _, enc, _ = german_halves
    x = enc(a)
    assert correlation_difference(x, x.copy()) == pytest.approx(0.0, abs=1e-9)


def test_correlation_constant_columns_do_not_produce_nan():
    rng = np.random.default_rng(0)
    real = rng.random((200, 4))
    synth = real.copy()
    synth[:, 2] = 0.3  # constant column on the synthetic side
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diff = correlation_difference(real, synth)
    # Only the 3 pairs involving column 2 differ (real r_2j vs 0); mean over the 6 pairs.
    r = np.corrcoef(real, rowvar=False)
    expected = (abs(r[2, 0]) + abs(r[2, 1]) + abs(r[2, 3])) / 6
    assert diff == pytest.approx(expected)


def test_correlation_detects_broken_dependency():
    rng = np.random.default_rng(0)
    x = rng.random(500)
    real = np.c_[x, x + 0.05 * rng.random(500)]
    synth = np.c_[x, rng.permutation(real[:, 1])]
    assert correlation_difference(real, synth) > 0.8


# --------------------------------------------------------------------------- detection_auc


def test_detection_real_halves_is_chance(german_halves):
    a, b, enc, _ = german_halves
    auc = detection_auc(enc(a), enc(b), seed=0)
    assert 0.35 <= auc <= 0.65


def test_detection_bad_synthetic_is_trivial(german_halves):
    a, _, enc, _ = german_halves
    numeric = list(enc.numeric)
    nominal = list(enc.nominal)
    bad = _noisy_copy(a, numeric, nominal, seed=1)
    assert detection_auc(enc(a), enc(bad), seed=0) > 0.95


def test_detection_sees_collapsed_variance():
    """Same means, shrunken spread: invisible to a linear detector, caught by the default."""
    rng = np.random.default_rng(0)
    real = rng.normal(0.5, 0.15, size=(700, 5)).clip(0, 1)
    synth = rng.normal(0.5, 0.03, size=(700, 5)).clip(0, 1)
    assert detection_auc(real, synth, seed=0) > 0.9
    assert detection_auc(real, synth, seed=0, classifier="logistic") < 0.7


def test_detection_balanced_subsample_and_determinism():
    rng = np.random.default_rng(0)
    real = rng.random((600, 6))
    synth = rng.random((150, 6)) ** 2
    one = detection_auc(real, synth, seed=7)
    assert one == detection_auc(real, synth, seed=7)
    assert 0.5 < one <= 1.0
    with pytest.raises(ValueError, match="NaN"):
        detection_auc(real, np.full((10, 6), np.nan))
    with pytest.raises(ValueError, match="same encoder"):
        detection_auc(real, synth[:, :5])


# --------------------------------------------------------------------------- utility


def test_utility_real_on_real_german(german_halves):
    a, b, _, enc_x = german_halves
    out = utility(enc_x(a), a["class"].to_numpy(), enc_x(b), b["class"].to_numpy(), seed=0)
    assert set(out) == {"utility/accuracy", "utility/auc"}
    assert out["utility/auc"] > 0.65
    assert out["utility/accuracy"] > 0.65


def test_utility_single_class_synthetic_does_not_crash(german_halves):
    a, b, _, enc_x = german_halves
    vy = b["class"].to_numpy()
    out = utility(enc_x(a), np.full(len(a), "good"), enc_x(b), vy)
    assert out["utility/auc"] == 0.5
    assert out["utility/accuracy"] == pytest.approx(np.mean(vy == "good"))


def test_utility_multiclass_and_missing_class():
    rng = np.random.default_rng(0)
    centres = np.array([[0.2, 0.2], [0.8, 0.2], [0.5, 0.8]])
    y = rng.integers(0, 3, 600)
    x = (centres[y] + rng.normal(0, 0.08, (600, 2))).clip(0, 1)
    out = utility(x[:400], y[:400], x[400:], y[400:], n_estimators=20)
    assert out["utility/auc"] > 0.9 and out["utility/accuracy"] > 0.8
    # synthetic data that never produces class 2: still defined, lower
    keep = y[:400] != 2
    partial = utility(x[:400][keep], y[:400][keep], x[400:], y[400:], n_estimators=20)
    assert 0.5 <= partial["utility/auc"] < out["utility/auc"]
    assert partial["utility/accuracy"] < 0.8


# --------------------------------------------------------------------------- DCR and diversity


def test_dcr_identical_are_exact_copies(german_halves):
    a, _, enc, _ = german_halves
    x = enc(a)
    out = distance_to_closest_record(x, x.copy())
    assert out["dcr/exact_copies"] == 1.0
    assert out["dcr/median"] == pytest.approx(0.0, abs=1e-6)
    assert out["dcr/p05"] == pytest.approx(0.0, abs=1e-6)
    assert out["dcr/real_median"] > 0.1


def test_dcr_fresh_rows_are_not_copies(german_halves):
    a, b, enc, _ = german_halves
    out = distance_to_closest_record(enc(a), enc(b), seed=3)
    assert out["dcr/exact_copies"] == 0.0
    assert 0 < out["dcr/p05"] <= out["dcr/median"]
    # fresh real rows sit at about the real-vs-real scale
    assert 0.5 < out["dcr/median"] / out["dcr/real_median"] < 1.5
    assert out == distance_to_closest_record(enc(a), enc(b), seed=3)


def test_dcr_ratio_reads_synthetic_rows_against_fresh_ones(german_halves):
    """`dcr_ratio` (a trial's `dcr/ratio`, select/score's privacy guard): copies of the train
    rows score 0, fresh real rows about 1 (the holdout is another half of the same table)."""
    a, b, enc, _ = german_halves
    train, fresh, holdout = enc(a.iloc[:250]), enc(a.iloc[250:]), enc(b)
    assert dcr_ratio(train, holdout, train[:100]) == 0.0
    assert 0.85 < dcr_ratio(train, holdout, fresh) < 1.15
    assert np.isnan(dcr_ratio(train, train, fresh))  # holdout = train: no scale, no ratio


def test_diversity_collapse_and_subsample():
    rng = np.random.default_rng(0)
    collapsed = np.tile(rng.random((1, 5)), (300, 1))
    assert diversity(collapsed) == pytest.approx(0.0)
    spread = rng.random((2000, 5))
    d = diversity(spread, seed=1)
    assert d == diversity(spread, seed=1)
    # mean distance between uniform points in [0,1]^5 is about 0.88
    assert 0.8 < d < 0.95
    assert math.isnan(diversity(spread[:1]))


# --------------------------------------------------------------------------- tabular_report


REPORT_KEYS = {
    "fidelity/ks_mean",
    "fidelity/tv_mean",
    "fidelity/score",
    "correlation_diff",
    "detection_auc",
    "utility/accuracy",
    "utility/auc",
    "dcr/median",
    "dcr/p05",
    "dcr/exact_copies",
    "dcr/real_median",
    "diversity",
}


FIELD_KEYS = {"KSComplement", "TVComplement", "column_shapes", "CorrelationSimilarity",
              "ContingencySimilarity", "column_pair_trends"}


def _per_column(numeric, nominal) -> set[str]:
    return {f"KSComplement/{c}" for c in numeric} | {f"TVComplement/{c}" for c in nominal}


def _report(a, synth, enc, enc_x, val, seed=0):
    return tabular_report(
        a, synth, enc(a), enc(synth), enc.numeric, enc_x.nominal, "class",
        val_X_enc=enc_x(val), val_y=val["class"].to_numpy(), synth_y=synth["class"].to_numpy(),
        seed=seed, synth_X_enc=enc_x(synth), n_estimators=30,
    )  # fmt: skip


def test_report_keys_types_and_determinism(german_halves):
    a, b, enc, enc_x = german_halves
    train, val = a.iloc[:350], a.iloc[350:]
    one = _report(train, b, enc, enc_x, val, seed=5)
    columns = _per_column(enc.numeric, enc_x.nominal + ["class"])
    assert set(one) == REPORT_KEYS | FIELD_KEYS | columns
    assert all(type(v) is float and math.isfinite(v) for v in one.values())
    assert one == _report(train, b, enc, enc_x, val, seed=5)
    assert 0.35 <= one["detection_auc"] <= 0.65
    assert one["fidelity/score"] > 0.85


def test_report_good_vs_bad_synthetic(german_halves):
    a, b, enc, enc_x = german_halves
    train, val = a.iloc[:350], a.iloc[350:]
    good = _report(train, b, enc, enc_x, val)
    bad_df = _noisy_copy(b, enc.numeric, enc_x.nominal, seed=2)
    bad_df["class"] = np.random.default_rng(0).permutation(bad_df["class"].to_numpy())
    bad = _report(train, bad_df, enc, enc_x, val)
    assert bad["fidelity/score"] < good["fidelity/score"]
    assert bad["detection_auc"] > 0.95 > good["detection_auc"]
    assert bad["correlation_diff"] > good["correlation_diff"]
    assert bad["utility/auc"] < good["utility/auc"]


def test_report_on_diabetes_numeric_only_features(shared_data):
    df, numeric, nominal = _load_arff(shared_data / "diabetes" / "diabetes.arff")
    assert nominal == ["class"]
    perm = np.random.default_rng(0).permutation(len(df))
    train, val, synth = (df.iloc[perm[i:j]] for i, j in ((0, 300), (300, 500), (500, 768)))
    enc, enc_x = _Encoder(train, numeric, ["class"]), _Encoder(train, numeric, [])
    out = tabular_report(
        train, synth, enc(train), enc(synth), numeric, [], "class",
        val_X_enc=enc_x(val), val_y=val["class"].to_numpy(),
        synth_y=synth["class"].to_numpy(), synth_X_enc=enc_x(synth),
    )  # fmt: skip
    # the target adds the nominal (TV) part; no nominal feature, so no ContingencySimilarity
    # beyond the target's pairs with the numeric columns
    assert set(out) == REPORT_KEYS | FIELD_KEYS | _per_column(numeric, ["class"])
    assert out["utility/auc"] > 0.7
    assert 0.3 <= out["detection_auc"] <= 0.7
