"""The SMOTE baseline and the field's scores of a table's final scoring, on the real tables."""

from __future__ import annotations

import pandas as pd
import pytest

from farm.data.prepare_tables import prepare_table
from farm.evaluation.smote_baseline import smote_rows
from farm.evaluation.table_scores import field_scores, smote_baseline
from farm.infra.errors import DataError


@pytest.fixture(scope="module")
def german(shared_data, tmp_path_factory):
    return prepare_table("german_credit", shared_data / "german_credit" / "german_credit.arff",
                         None, {}, tmp_path_factory.mktemp("exp"), 0)


def test_smote_rows_interpolate_within_each_class(german):
    data, train = german.trial_data, german.train_frame()
    rows = smote_rows(train, data.target, data.nominal(), 300, seed=0)
    assert list(rows.columns) == list(train.columns) and len(rows) == 300
    shares = rows[data.target].value_counts(normalize=True)
    real = train[data.target].value_counts(normalize=True)
    assert (shares - real).abs().max() < 0.01  # every class grown by its share
    for label, group in rows.groupby(data.target):
        source = train[train[data.target] == label]
        for c in data.numeric():  # on a segment between two rows of the class
            assert source[c].min() <= group[c].min() and group[c].max() <= source[c].max()
        for c in data.nominal():
            assert set(group[c]) <= set(source[c])
    again = smote_rows(train, data.target, data.nominal(), 300, seed=0)
    pd.testing.assert_frame_equal(rows, again)


def test_smote_rows_need_two_rows_of_every_class(german):
    data = german.trial_data
    train = german.train_frame()
    lonely = pd.concat([train, train.iloc[[0]].assign(**{data.target: "rare"})],
                       ignore_index=True)
    with pytest.raises(DataError, match="'rare'.*one row"):
        smote_rows(lonely, data.target, data.nominal(), 50, seed=0)


@pytest.fixture(scope="module")
def diabetes(shared_data, tmp_path_factory):
    return prepare_table("diabetes", shared_data / "diabetes" / "diabetes.arff", None, {},
                         tmp_path_factory.mktemp("exp"), 0)


def test_the_baseline_is_scored_as_a_trial_is(diabetes):
    out = smote_baseline(diabetes, 200, seed=0)
    assert out["rows"] == 200 and out["seconds"] >= 0
    assert 0.5 < out["tstr"]["auc"] <= 1 and 0.5 < out["real_plus_synthetic"]["auc"] <= 1
    field = out["field"]
    for key in ("column_shapes", "column_pair_trends", "KSComplement", "TVComplement",
                "CorrelationSimilarity", "ContingencySimilarity", "detection_xgb", "dcr_share"):
        assert 0 <= field[key] <= 1, key
    # numbers interpolated between train rows sit nearer them than fresh rows do (0.695 at
    # 537 rows; German credit's nominal columns, taken as the neighbours' mode, give 0.51)
    assert field["dcr_share"] > 0.6
    assert field["dcr_ratio"] < 0.6  # and at under half the holdout's distance (0.40 in the bench)


def test_the_final_dcr_share_holds_the_test_rows_out(german):
    """The final DCR share's holdout is the test split: rows copied from it are nearer the
    holdout every time, and rows copied from the train split nearer the train rows at least as
    often as they survive the cut to the test split's size."""
    field = field_scores(german.test_frame(), german, seed=0)
    assert field["dcr_share"] == 0.0 and field["column_shapes"] > 0.9
    assert field["dcr_ratio"] == pytest.approx(1.0)  # the holdout read against itself
    train = field_scores(german.train_frame(), german, seed=0)
    assert train["dcr_share"] >= len(german.split.test) / len(german.split.train)
    assert train["dcr_ratio"] == 0.0
