"""The evaluator's pieces that run without Ray: sharding, one classifier's fit and test, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farm.errors import ConfigError
from farm.evaluator import (EvaluatorConfig, Task, evaluator_config, fit_and_test, shard,
                            step_budget)
from farm.train.classifier import confusion, scores


@pytest.mark.parametrize("n,world", [(10, 1), (10, 2), (11, 2), (7, 3), (2, 4)])
def test_shards_are_equal_length_and_cover_every_index(n, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    parts = [shard(order, rank, world) for rank in range(world)]
    assert len({len(p) for p in parts}) == 1  # DDP steps in lockstep
    assert set(torch.cat(parts).tolist()) == set(range(n))
    assert len(parts[0]) == -(-n // world)


def _blobs(n, rng, size=16):
    """Three classes a classifier can tell apart by colour: red, green, blue images."""
    labels = rng.integers(0, 3, n)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    images[np.arange(n), :, :, labels] += 150
    return images, labels


def test_fit_and_test_learns_an_easy_task_and_scores_it():
    rng = np.random.default_rng(0)
    config = EvaluatorConfig(arch="tiny", epochs=4, batch_size=16, augment=False)
    out = fit_and_test(Task("easy", *_blobs(96, rng)), Task("test", *_blobs(60, rng)), 3, config,
                       torch.device("cpu"), say=lambda _line: None)
    result = scores(out["matrix"], ["red", "green", "blue"])
    assert result["accuracy"] > 0.9
    assert sum(map(sum, result["confusion"])) == 60 and out["train_images"] == 96


def test_a_classifier_taught_wrong_labels_scores_below_chance():
    rng = np.random.default_rng(1)
    images, labels = _blobs(96, rng)
    config = EvaluatorConfig(arch="tiny", epochs=4, batch_size=16, augment=False)
    out = fit_and_test(Task("shifted", images, (labels + 1) % 3), Task("test", *_blobs(60, rng)),
                       3, config, torch.device("cpu"), say=lambda _line: None)
    assert scores(out["matrix"], list("abc"))["accuracy"] < 0.2


def test_nonzero_ranks_train_but_leave_testing_to_rank_zero():
    rng = np.random.default_rng(2)
    config = EvaluatorConfig(arch="tiny", epochs=1, batch_size=8)
    assert fit_and_test(Task("t", *_blobs(20, rng)), Task("test", *_blobs(6, rng)), 3, config,
                        torch.device("cpu"), rank=1, world=2, say=lambda _line: None) is None


def test_confusion_and_scores_per_class():
    class Fixed(torch.nn.Module):  # predicts class 0 for everything
        def forward(self, x):
            return torch.tensor([[1.0, 0.0]]).repeat(len(x), 1)

    matrix, _ = confusion(Fixed(), torch.zeros(5, 3, 4, 4), torch.tensor([0, 0, 0, 1, 1]), 2)
    assert matrix.tolist() == [[3, 0], [2, 0]]
    result = scores(matrix, ["a", "b"])
    assert result["accuracy"] == 0.6 and result["per_class"] == {"a": 1.0, "b": 0.0}


@pytest.mark.parametrize("values,message", [({"arch": "vgg"}, "arch"), ({"epochs": 0}, "epochs"),
                                            ({"lr": 0.0}, "lr"), ({"workrs": 2}, "workrs")])
def test_bad_evaluator_settings_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        evaluator_config(values)


def test_every_classifier_takes_the_same_number_of_steps_whatever_its_data():
    rng = np.random.default_rng(3)
    config = EvaluatorConfig(arch="tiny", epochs=2, batch_size=16)
    test = Task("test", *_blobs(6, rng))
    steps = [fit_and_test(Task("t", *_blobs(n, rng)), test, 3, config, torch.device("cpu"),
                          say=lambda _line: None, reference_images=40)["steps"]
             for n in (40, 96, 7)]
    assert steps == [step_budget(config, 40)] * 3 == [2 * 3] * 3  # 40 images: 3 steps a pass
