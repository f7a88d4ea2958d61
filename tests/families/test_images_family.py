"""The image families' pieces on a tiny synthetic dataset: views, games, scoring, export; the
fruit-pairs `stable` settings (Adam, hinge, LeCam, an EMA generator) and the report's defaults
left as they were."""

import dataclasses

import numpy as np
import pytest
import torch

from farm.config.family_params import params_from
from farm.families import fruit_pairs, image_common as I, spiked
from farm.families.kinds import KINDS
from farm.gan.checkpoint import load_state, save_state
from farm.gan.ema import EMAGenerator
from farm.gan.gan_loop import LOSSES, gan_epoch, shuffled_batches
from farm.models.images import DISCRIMINATORS, GENERATORS, noise_for

SMALL = {"g_width": 4, "discriminator": "DCGAN", "d_width": 4, "eval_images": 6,
         "kid_subsets": 3, "grid_images": 3, "batch_size": 8}


def test_pair_trial_sees_only_its_class(data):
    view = KINDS["fruit-pairs"].view(data, {"class": "green"})
    rows = fruit_pairs.real_rows(view, torch.device("cpu"))
    assert rows.shape == (12, 3, 64, 64) and float(rows[:, 1].mean()) > 0.3  # green channel


def test_pair_and_spiked_trials_train_score_and_export(data):
    for kind, view in (("fruit-pairs", KINDS["fruit-pairs"].view(data, {"class": "blue"})),
                       ("spiked", data)):
        family = KINDS[kind]
        params = params_from(kind, SMALL)
        pair = family.build(params, view, torch.device("cpu"))
        game = family.game(params, view, pair, torch.device("cpu"))
        real = family.real_rows(view, torch.device("cpu"))
        stats = gan_epoch(pair, shuffled_batches(real, 8, torch.Generator().manual_seed(0)),
                          game, epoch=1)
        assert {"loss/d", "loss/g", "d_acc"} <= set(stats)
        metrics = family.evaluate(pair.generator, params, view, 0)
        suffix = "" if kind == "fruit-pairs" else "/mean"
        assert all(np.isfinite(metrics[f"{key}{suffix}"])
                   for key in ("kid", "judge_accuracy", "diversity"))
        assert metrics[f"diversity{suffix}"] >= 0
        exported = family.export(pair.generator, params, view, 5, 0)
        expected = ["blue"] if kind == "fruit-pairs" else ["red", "green", "blue"]
        assert list(exported) == expected
        assert all(a.shape == (5, 64, 64, 3) and a.dtype == np.uint8 for a in exported.values())
        grid = next(iter(family.pictures(pair.generator, params, view, 0).values()))
        assert grid.shape[0] == 3 and 0 <= grid.min() and grid.max() <= 1


def test_spiked_game_puts_real_images_in_their_class_and_fakes_in_the_last(data):
    params = params_from("spiked", SMALL)
    pair = spiked.build(params, data, torch.device("cpu"))
    assert pair.discriminator(torch.zeros(2, 3, 64, 64)).shape == (2, 4)  # 3 classes + fake
    game = spiked.game(params, data, pair, torch.device("cpu"))
    z, labels = game.sample(5)
    assert labels.max() < 3 and pair.generator(z, labels).shape == (5, 3, 64, 64)


def test_judge_is_built_once_per_data(data):
    first = I.judge_for(data, torch.device("cpu"))
    assert I.judge_for(data, torch.device("cpu")) is first


CPU = torch.device("cpu")
# trials/images.yaml's `stable`, with an EMA that moves within two steps
STABLE = {"optimizer": "adam", "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.99,
          "loss": "hinge", "diffaug": "color,translation,cutout", "lecam": 0.3,
          "ema_decay": 0.9, "ema_start": 1}


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_the_reports_defaults_build_the_reports_pair_as_before(data):
    view = KINDS["fruit-pairs"].view(data, {"class": "blue"})
    params = params_from("fruit-pairs", {})
    assert (params.lecam, params.ema_decay, params.beta2) == (0.0, 0.0, 0.999)
    torch.manual_seed(0)
    pair = fruit_pairs.build(params, view, CPU)
    torch.manual_seed(0)
    G, D = GENERATORS["G2a"](width=64), DISCRIMINATORS["D34"](num_outputs=1)
    assert type(pair.generator) is type(G) and type(pair.discriminator) is type(D)
    assert (_count(pair.generator), _count(pair.discriminator)) == (4_930_276, 21_285_185)
    for built, fresh in ((pair.generator, G), (pair.discriminator, D)):  # same keys, same init
        assert list(built.state_dict()) == list(fresh.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(),
                                                      fresh.state_dict().values()))
    for opt, module in ((pair.g_opt, pair.generator), (pair.d_opt, pair.discriminator)):
        assert type(opt) is torch.optim.SGD and len(opt.param_groups) == 1
        group = opt.param_groups[0]
        assert (group["lr"], group["momentum"]) == (1e-3, 0.95)
        assert [id(p) for p in group["params"]] == [id(p) for p in module.parameters()]


def test_the_reports_game_is_plain_cross_entropy(data):
    view = KINDS["fruit-pairs"].view(data, {"class": "blue"})
    params = params_from("fruit-pairs", SMALL)
    pair = fruit_pairs.build(params, view, CPU)
    game = fruit_pairs.game(params, view, pair, CPU)
    D = pair.discriminator.eval()
    real, fake = fruit_pairs.real_rows(view, CPU)[:4], torch.rand(4, 3, 64, 64) * 2 - 1
    loss, stats = game.d_loss(real, fake, None, 1)
    assert torch.equal(loss, LOSSES["bce"][0](D(real), D(fake), torch.ones(4), torch.zeros(4)))
    assert set(stats) == {"d_acc/real", "d_acc/fake", "d_acc"}


def test_a_stable_pair_trains_and_eval_mode_samples_its_average(data, tmp_path):
    view = KINDS["fruit-pairs"].view(data, {"class": "blue"})  # 12 images: one step an epoch
    params = params_from("fruit-pairs", {**SMALL, **STABLE})
    torch.manual_seed(0)
    pair = fruit_pairs.build(params, view, CPU)
    G, D = pair.generator, pair.discriminator
    assert isinstance(G, EMAGenerator) and isinstance(G.raw, GENERATORS["G2a"])
    assert type(pair.g_opt) is torch.optim.Adam
    assert pair.g_opt.param_groups[0]["betas"] == (0.0, 0.99)
    assert [group["lr"] for opt in (pair.g_opt, pair.d_opt) for group in opt.param_groups] == [
        1e-4, 4e-4]
    trained = {id(p) for group in pair.g_opt.param_groups for p in group["params"]}
    assert trained == {id(p) for p in G.raw.parameters()}
    game = fruit_pairs.game(params, view, pair, CPU)
    assert game.tricks.loss == "hinge" and game.D.discriminator is D  # seen through DiffAugment
    real = fruit_pairs.real_rows(view, CPU)
    order = torch.Generator().manual_seed(0)
    stats = [gan_epoch(pair, shuffled_batches(real, 8, order), game, epoch) for epoch in (1, 2)]
    assert all(np.isfinite(epoch["reg/lecam"]) for epoch in stats)
    assert int(G.steps) == 2 and int(D.lecam.steps) == 2
    images = I.generate(G, 4, seed=3)
    z = noise_for(G, 4, CPU, generator_rng=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(images, G.ema(z))
        assert not torch.allclose(images, G.raw.eval()(z))
    # the average and LeCam's averages are in the checkpoint (weights_only=True)
    save_state(tmp_path, pair, 2)
    state = load_state(tmp_path)
    assert {"raw.g1.net.0.weight", "ema.g1.net.0.weight", "steps"} <= set(state["generator"])
    fresh = fruit_pairs.build(params, view, CPU)
    fresh.generator.load_state_dict(state["generator"])
    fresh.discriminator.load_state_dict(state["discriminator"])
    assert torch.equal(fresh.discriminator.lecam.sums, D.lecam.sums)
    assert torch.equal(I.generate(fresh.generator, 4, seed=3), images)


SHARED = {**SMALL, **STABLE, "shared_start": 2}


def _spec(class_name: str, tag: str = "variant=transfer", **params) -> dict:
    return {"family": "fruit-pairs", "kind": "fruit-pairs", "dataset": "colours",
            "class": class_name, "tag": tag, "params": {**SHARED, **params}}


def test_a_shared_start_is_one_per_setting_and_seed_whatever_the_class():
    assert fruit_pairs.start_key(_spec("red")) == fruit_pairs.start_key(_spec("blue"))
    assert fruit_pairs.start_key(_spec("red")) != fruit_pairs.start_key(
        _spec("red", tag="variant=transfer,seed#1"))
    assert fruit_pairs.start_key(_spec("red", shared_start=0)) is None
    assert KINDS["spiked"].start_key(_spec("red")) is None


def test_a_pair_begins_from_its_shared_start_and_only_then(data):
    params = params_from("fruit-pairs", SHARED)
    weights = fruit_pairs.grow_start(params, data, seed=0, device=CPU)
    samples = weights["samples"]  # what the start draws: one grid row of grid_images
    assert samples.dtype == torch.uint8 and samples.shape[0] == 3
    assert samples.shape[2] > samples.shape[1]
    started = KINDS["fruit-pairs"].view(
        dataclasses.replace(data, starts={fruit_pairs.start_key(_spec("blue")): weights}),
        _spec("blue"))
    torch.manual_seed(1)
    pair = fruit_pairs.build(params, started, CPU)
    fruit_pairs.begin(pair, started)
    for part, module in (("generator", pair.generator), ("discriminator", pair.discriminator)):
        state = module.state_dict()
        assert all(torch.equal(state[name], value) for name, value in weights[part].items())
    # from scratch without the setting; a trial that needs a start it was not given says so
    scratch = KINDS["fruit-pairs"].view(data, _spec("blue", shared_start=0))
    pair = fruit_pairs.build(params_from("fruit-pairs", {**SHARED, "shared_start": 0}), scratch,
                             CPU)
    before = {k: v.clone() for k, v in pair.generator.state_dict().items()}
    fruit_pairs.begin(pair, scratch)
    assert all(torch.equal(before[k], v) for k, v in pair.generator.state_dict().items())
    missing = KINDS["fruit-pairs"].view(data, _spec("blue"))
    with pytest.raises(RuntimeError, match="no shared start"):
        fruit_pairs.begin(fruit_pairs.build(params, missing, CPU), missing)


def test_the_shared_start_grows_on_every_class_s_fit_images(data, monkeypatch):
    """ImageData holds the fit images only (the val slice and the test split never reach a
    trial), and the start takes all of them, every class."""
    asked = []
    tensor = type(data).tensor
    monkeypatch.setattr(type(data), "tensor",
                        lambda self, index, device: asked.append(index) or tensor(self, index,
                                                                                 device))
    params = params_from("fruit-pairs", {**SHARED, "shared_start": 3})
    seen = []
    weights = fruit_pairs.grow_start(params, data, seed=0, device=CPU, say=seen.append)
    assert [list(i) for i in asked] == [list(range(len(data.labels)))]
    assert seen == ["epoch 3/3"] and set(weights) == {"generator", "discriminator", "samples"}
    assert "lecam.sums" in weights["discriminator"]  # LeCam's averages travel with D


def test_shared_start_must_be_a_number_of_epochs():
    with pytest.raises(ValueError, match="shared_start"):
        params_from("fruit-pairs", {"shared_start": -1})
