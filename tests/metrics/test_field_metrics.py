"""farm.metrics.field: the field's scores on frames small enough to work out by hand.

bench/field_metrics.py checks the same functions against SDMetrics itself on the real tables;
these pin the definitions (what 1 and 0 mean, what is left out, ties) without SDMetrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from farm.metrics.field import (column_shapes, dcr_share, detection_xgb, field_report,
                                ks_complement, pair_trends, tv_complement)


def test_ks_complement_is_one_for_equal_samples_and_zero_for_disjoint_ones():
    real = pd.Series([1.0, 2.0, 3.0, 4.0])
    assert ks_complement(real, real.sample(frac=1, random_state=0)) == 1.0
    assert ks_complement(real, real + 10) == 0.0
    assert ks_complement(real, pd.Series([1.0, 2.0, np.nan, np.nan])) == 0.5  # NaN dropped
    assert ks_complement(real, pd.Series([np.nan])) == 0.0


def test_tv_complement_counts_categories_of_either_side():
    real = pd.Series(["a", "a", "b", "b"])
    assert tv_complement(real, pd.Series(["a", "a", "a", "b"])) == 0.75
    assert tv_complement(real, pd.Series(["c", "c"])) == 0.0  # only in the synthetic rows
    assert tv_complement(real, pd.Series(["a", "b", None, None])) == 1.0  # missing dropped
    assert tv_complement(pd.Series([1, 1, 2]), pd.Series(["1", "1", "2"])) == 1.0  # dtypes


def test_column_shapes_names_every_column_and_averages_them():
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"]})
    synth = pd.DataFrame({"x": [11.0, 12.0, 13.0, 14.0], "c": ["a", "a", "a", "b"]})
    out = column_shapes(real, synth, ["x"], ["c"])
    assert out == {"KSComplement/x": 0.0, "TVComplement/c": 0.75, "KSComplement": 0.0,
                   "TVComplement": 0.75, "column_shapes": 0.375}


def test_pair_trends_correlation_and_contingency_by_hand():
    x = np.arange(8, dtype=float)
    real = pd.DataFrame({"x": x, "y": 2 * x, "c": ["a"] * 4 + ["b"] * 4,
                         "d": ["u"] * 4 + ["v"] * 4})
    same = pair_trends(real, real, ["x", "y"], ["c", "d"])
    assert same == {"CorrelationSimilarity": 1.0, "ContingencySimilarity": 1.0,
                    "column_pair_trends": 1.0}
    # y falls as x rises (r = -1 against +1); c and d swap partners; x's 10 bins over 0..7 and
    # c's halves keep their joint frequencies, as do y's
    flipped = real.assign(y=-2 * x + 14, d=["v"] * 4 + ["u"] * 4)
    out = pair_trends(real, flipped, ["x", "y"], ["c", "d"])
    assert out["CorrelationSimilarity"] == pytest.approx(0.0)
    # pairs: (x,c) 1, (x,d) 0, (y,c) 0, (y,d) 1, (c,d) 0 -> 2 / 5
    assert out["ContingencySimilarity"] == pytest.approx(2 / 5)
    assert out["column_pair_trends"] == pytest.approx(2 / 6)


def test_pair_trends_bins_numbers_over_the_real_range_with_open_ends():
    real = pd.DataFrame({"x": np.linspace(0, 1, 10), "c": ["a"] * 10})
    # far outside the real range: still the outer bins, so x's marginal moves (bins 1 and 10
    # gain everything) and the joint TV is that of x alone
    synth = pd.DataFrame({"x": [-5.0] * 5 + [5.0] * 5, "c": ["a"] * 10})
    assert pair_trends(real, synth, ["x"], ["c"])["ContingencySimilarity"] == pytest.approx(0.2)


def test_a_constant_numeric_pair_is_left_out_as_sdmetrics_leaves_it_out():
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": [5.0, 5.0, 5.0]})
    assert "CorrelationSimilarity" not in pair_trends(real, real, ["x", "k"], [])
    assert pair_trends(real, real, ["x"], []) == {}


def test_detection_xgb_is_chance_on_real_halves_and_one_on_shifted_rows():
    rows = np.random.default_rng(0).normal(size=(600, 4))
    assert abs(detection_xgb(rows[:300], rows[300:]) - 0.5) < 0.1
    assert detection_xgb(rows[:300], rows[300:] + 3.0) > 0.99


def test_dcr_share_copies_of_train_rows_holdout_rows_and_ties():
    rng = np.random.default_rng(1)
    train, holdout = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    assert dcr_share(train[:40], holdout, train[:40]) == 1.0  # copies of train rows
    assert dcr_share(train[:40], holdout, holdout) == 0.0
    # the larger set is cut to the smaller one's size: 40 of the 50 train rows are kept, so
    # copies of all 50 are nearer the train rows 40 times for sure
    assert dcr_share(train, holdout, train) >= 0.8
    assert dcr_share(train[:40], train[:40], rng.normal(size=(30, 3))) == 0.5  # all ties


def test_field_report_has_dcr_share_only_with_a_holdout():
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=60), "c": rng.choice(["a", "b"], 60)})
    enc = np.column_stack([frame["x"], frame["c"] == "a"]).astype(float)
    without = field_report(frame, frame, ["x"], ["c"], enc, enc)
    assert "dcr_share" not in without and without["column_shapes"] == 1.0
    with_holdout = field_report(frame, frame, ["x"], ["c"], enc, enc, holdout_enc=enc + 1)
    assert with_holdout["dcr_share"] == 1.0
