"""The image families' pieces on a tiny synthetic dataset: views, games, scoring, export."""

import numpy as np
import torch

from farm.families import KINDS, params_from
from farm.families import images as I
from farm.train.gan_loop import gan_epoch, shuffled_batches

SMALL = {"g_width": 4, "discriminator": "DCGAN", "d_width": 4, "eval_images": 6,
         "kid_subsets": 3, "grid_images": 3, "batch_size": 8}


def test_pair_trial_sees_only_its_class(data):
    view = KINDS["image-pair"].view(data, {"class": "green"})
    rows = I.class_rows(view, torch.device("cpu"))
    assert rows.shape == (12, 3, 64, 64) and float(rows[:, 1].mean()) > 0.3  # green channel


def test_pair_and_spiked_trials_train_score_and_export(data):
    for kind, view in (("image-pair", KINDS["image-pair"].view(data, {"class": "blue"})),
                       ("image-spiked", data)):
        family = KINDS[kind]
        params = params_from(kind, SMALL)
        pair = family.build(params, view, torch.device("cpu"))
        game = family.game(params, view, pair, torch.device("cpu"))
        real = family.real_rows(view, torch.device("cpu"))
        stats = gan_epoch(pair, shuffled_batches(real, 8, torch.Generator().manual_seed(0)),
                          game, epoch=1)
        assert {"loss/d", "loss/g", "d_acc"} <= set(stats)
        metrics = family.evaluate(pair.generator, params, view, 0)
        suffix = "" if kind == "image-pair" else "/mean"
        assert all(np.isfinite(metrics[f"{key}{suffix}"])
                   for key in ("kid", "judge_accuracy", "diversity"))
        assert metrics[f"diversity{suffix}"] >= 0
        exported = family.export(pair.generator, params, view, 5, 0)
        expected = ["blue"] if kind == "image-pair" else ["red", "green", "blue"]
        assert list(exported) == expected
        assert all(a.shape == (5, 64, 64, 3) and a.dtype == np.uint8 for a in exported.values())
        grid = next(iter(family.pictures(pair.generator, params, view, 0).values()))
        assert grid.shape[0] == 3 and 0 <= grid.min() and grid.max() <= 1


def test_spiked_game_puts_real_images_in_their_class_and_fakes_in_the_last(data):
    params = params_from("image-spiked", SMALL)
    pair = I.build_spiked(params, data, torch.device("cpu"))
    assert pair.discriminator(torch.zeros(2, 3, 64, 64)).shape == (2, 4)  # 3 classes + fake
    game = I.spiked_game(params, data, pair, torch.device("cpu"))
    z, labels = game.sample(5)
    assert labels.max() < 3 and pair.generator(z, labels).shape == (5, 3, 64, 64)


def test_judge_is_built_once_per_data(data):
    first = I.judge_for(data, torch.device("cpu"))
    assert I.judge_for(data, torch.device("cpu")) is first
