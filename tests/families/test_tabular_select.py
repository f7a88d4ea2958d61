"""select/score, the kept-epoch rule of tabular-a and tabular-forest, and its privacy guard."""

import pytest

from farm.families.tabular_a import selection_score

GOOD = {"utility/auc": 0.85, "fidelity/score": 0.9, "detection_auc": 0.55}
WORSE = {"utility/auc": 0.75, "fidelity/score": 0.8, "detection_auc": 0.7}


def test_the_score_weighs_utility_fidelity_and_undetectability_alike():
    assert selection_score(GOOD) == pytest.approx((0.85 + 0.9 + 0.9) / 3)
    assert selection_score(WORSE) < selection_score(GOOD)


def test_an_epoch_under_the_privacy_floor_ranks_below_every_epoch_above_it():
    memorised, private = GOOD | {"dcr/ratio": 0.7}, WORSE | {"dcr/ratio": 0.95}
    assert selection_score(memorised, 0.9) < selection_score(private, 0.9)
    assert selection_score(memorised, 0.9) == pytest.approx(selection_score(GOOD) - 1)
    # below the floor, epochs still rank among themselves
    assert selection_score(WORSE | {"dcr/ratio": 0.5}, 0.9) < selection_score(memorised, 0.9)
    # the guard off, or no val slice to measure against: the plain score
    assert selection_score(memorised, 0.0) == selection_score(GOOD)
    assert selection_score(GOOD, 0.9) == selection_score(GOOD)
