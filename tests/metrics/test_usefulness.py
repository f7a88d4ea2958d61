"""Usefulness: a probe trained on generated features, tested on the val slice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farm.metrics.paired import mean_and_interval, paired_gain
from farm.metrics.usefulness import fit_probe, probe_probs, usefulness

NAMES = ("a", "b", "c")


def _clusters(rng, per_class, spread=0.3, dim=8):
    centres = np.eye(3, dim) * 3
    x = np.concatenate([centres[c] + spread * rng.standard_normal((per_class, dim))
                        for c in range(3)])
    return x, np.repeat(np.arange(3), per_class)


def test_a_probe_learns_separable_features():
    rng = np.random.default_rng(0)
    x, y = _clusters(rng, 20)
    probe = fit_probe(torch.as_tensor(x), torch.as_tensor(y), 3)
    assert (probe_probs(probe, torch.as_tensor(x)).argmax(1).numpy() == y).mean() == 1.0


def test_images_like_the_real_class_are_useful_and_collapsed_or_wrong_ones_are_not():
    rng = np.random.default_rng(1)
    fit_x, fit_y = _clusters(rng, 20)
    val_x, val_y = _clusters(rng, 5)
    real_fit = {c: fit_x[fit_y == c] for c in range(3)}
    good, _ = _clusters(rng, 16)
    good_by_class = {c: torch.as_tensor(good[16 * c:16 * (c + 1)]) for c in range(3)}
    wrong_by_class = {c: good_by_class[(c + 1) % 3] for c in range(3)}
    good_score = usefulness(good_by_class, real_fit, val_x, val_y, NAMES)
    wrong_score = usefulness(wrong_by_class, real_fit, val_x, val_y, NAMES)
    assert good_score["useful"] > 0.8 and good_score["useful_accuracy"] == 1.0
    assert wrong_score["useful"] < 0.2
    assert set(good_score) == {"useful", "useful_accuracy", "useful/a", "useful/b", "useful/c"}


def test_a_per_class_trial_is_scored_on_its_class_with_real_images_for_the_others():
    rng = np.random.default_rng(2)
    fit_x, fit_y = _clusters(rng, 20)
    val_x, val_y = _clusters(rng, 5)
    real_fit = {c: fit_x[fit_y == c] for c in range(3)}
    like_b = torch.as_tensor(real_fit[1][:10] + 0.05)
    like_c = torch.as_tensor(real_fit[2][:10])
    right = usefulness({1: like_b}, real_fit, val_x, val_y, NAMES)
    wrong = usefulness({1: like_c}, real_fit, val_x, val_y, NAMES)
    assert set(right) == {"useful", "useful_accuracy", "useful/b"}
    assert right["useful"] > 0.7 > 0.4 > wrong["useful"]


def test_no_val_slice_no_usefulness():
    assert usefulness({0: torch.zeros(4, 8)}, {}, None, None, NAMES) == {}


def test_a_paired_gain_has_the_t_interval():
    gain = paired_gain([0.60, 0.62, 0.61], [0.55, 0.56, 0.58])
    diffs = [0.05, 0.06, 0.03]
    assert gain["per_seed"] == pytest.approx(diffs)
    assert gain["mean"] == pytest.approx(np.mean(diffs))
    half = 4.302652729911275 * np.std(diffs, ddof=1) / np.sqrt(3)
    assert gain["ci"] == pytest.approx([np.mean(diffs) - half, np.mean(diffs) + half])
    assert mean_and_interval([0.3]) == (0.3, None)
    with pytest.raises(ValueError, match="same seeds"):
        paired_gain([0.1, 0.2], [0.1])
