"""The conditional family on a tiny three-colour dataset: it trains through the shared loop,
the EMA is what eval mode samples, a checkpoint restores the raw and averaged generator (and a
resumed trial continues exactly), scoring names every class, export from a checkpoint gives
every class's images; the regularisers (LeCam, consistency, transitional conditioning) are off
by default, train when on, and survive a checkpoint."""

import numpy as np
import pytest
import torch

from farm.config.family_params import MODALITY, ConditionalParams, params_from
from farm.families import image_common as I
from farm.families.kinds import KINDS
from farm.gan.checkpoint import load_state, save_state
from farm.gan.diffaugment import Augmented
from farm.gan.ema import EMAGenerator
from farm.gan.gan_loop import LOSSES, gan_epoch, shuffled_batches
from farm.models.images import noise_for
from farm.pipeline.export import sample_from_checkpoint, sample_seed

KIND = "conditional"
FAMILY = KINDS[KIND]
CPU = torch.device("cpu")
SMALL = {"g_width": 4, "d_width": 4, "z_dim": 8, "batch_size": 8, "ema_decay": 0.5,
         "ema_start": 1, "eval_images": 6, "kid_subsets": 3, "grid_images": 3}
EPOCHS = 2


def _pair_and_game(data, **changes):
    params = params_from(KIND, {**SMALL, **changes})
    pair = FAMILY.build(params, data, CPU)
    return params, pair, FAMILY.game(params, data, pair, CPU)


def _epoch(pair, game, data, epoch, seed):
    torch.manual_seed(seed)
    real = FAMILY.real_rows(data, CPU)
    return gan_epoch(pair, shuffled_batches(real, SMALL["batch_size"],
                                            torch.Generator().manual_seed(seed)), game, epoch)


@pytest.fixture(scope="module")
def trained(data):
    torch.manual_seed(0)
    params, pair, game = _pair_and_game(data)
    stats = [_epoch(pair, game, data, epoch, epoch) for epoch in range(1, EPOCHS + 1)]
    return params, pair, stats


def _same_state(a, b) -> bool:
    """Equal (nested) state dicts: every tensor equal, every other value equal."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_state(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_state(x, y) for x, y in zip(a, b))
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_defaults_turn_on_diffaug_and_the_family_is_one_image_trial_for_all_classes():
    assert ConditionalParams().diffaug == "color,translation,cutout"
    assert MODALITY[KIND] == "image" and FAMILY.view(object, {}) is object  # no per-class view


def test_trains_through_the_shared_loop(trained, data):
    _, pair, stats = trained
    for epoch in stats:
        assert {"loss/d", "loss/g", "d_acc", "d_acc/real", "d_acc/fake"} <= set(epoch)
        assert all(np.isfinite(v) for v in epoch.values())
    G = pair.generator
    assert isinstance(G, EMAGenerator)
    assert int(G.steps) == EPOCHS * (len(data.labels) // SMALL["batch_size"])  # one per G step
    # only the raw generator is trained; the average is not a parameter of the optimizer
    trained_ids = {id(p) for group in pair.g_opt.param_groups for p in group["params"]}
    assert trained_ids == {id(p) for p in G.raw.parameters()}
    assert not any(p.requires_grad for p in G.ema.parameters())
    differ = [not torch.equal(a, b) for a, b in zip(G.ema.parameters(), G.raw.parameters())]
    assert all(differ)


def test_the_game_is_hinge_on_the_projection_seen_through_diffaug(data):
    _, pair, game = _pair_and_game(data)
    assert isinstance(game.D, Augmented) and game.D.discriminator is pair.discriminator
    _, pair, plain = _pair_and_game(data, diffaug="")
    assert plain.D is pair.discriminator
    pair.discriminator.eval()  # no power iteration: the same D for the check below
    images, labels = FAMILY.real_rows(data, CPU)
    z, fake_labels = plain.sample(6)
    assert fake_labels.max() < len(data.classes)
    fake = pair.generator(z, fake_labels).detach()
    loss, stats = plain.d_loss((images[:6], labels[:6]), fake, (z, fake_labels), 1)
    D = pair.discriminator
    expected = LOSSES["hinge"][0](D(images[:6], labels[:6]), D(fake, fake_labels))
    assert torch.allclose(loss, expected) and 0 <= float(stats["d_acc"]) <= 1
    g_loss, _ = plain.g_loss(None, fake, (z, fake_labels), 1)
    assert torch.allclose(g_loss, -D(fake, fake_labels).mean())


def test_eval_mode_samples_the_average_not_the_raw_weights(trained):
    _, pair, _ = trained
    G = pair.generator
    images = I.generate(G, 4, seed=3, label=1)
    assert not G.training
    z = noise_for(G, 4, CPU, generator_rng=torch.Generator().manual_seed(3))
    labels = torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(images, G.ema(z, labels))
        assert not torch.allclose(images, G.raw.eval()(z, labels))


def test_a_checkpoint_restores_raw_average_and_steps_and_resumes_exactly(trained, data, tmp_path):
    _, pair, _ = trained
    save_state(tmp_path, pair, EPOCHS)
    assert {"raw.linear.weight", "ema.linear.weight", "steps"} <= set(
        load_state(tmp_path)["generator"])
    restored = []
    for _ in range(2):  # restored the way the trainable resumes a trial (a fresh read each:
        state = load_state(tmp_path)  # Adam keeps the loaded tensors, it does not copy them)
        _, fresh, game = _pair_and_game(data)
        for name in ("generator", "discriminator", "g_opt", "d_opt"):
            getattr(fresh, name).load_state_dict(state[name])
        for name in ("generator", "discriminator", "g_opt", "d_opt"):
            assert _same_state(getattr(fresh, name).state_dict(),
                               getattr(pair, name).state_dict()), name
        assert torch.equal(I.generate(fresh.generator, 3, 0, 2),
                           I.generate(pair.generator, 3, 0, 2))
        restored.append((fresh, game))
    # a resumed trial keeps training and averaging, the same way every time
    ema_before = restored[0][0].generator.ema.linear.weight.clone()
    for fresh, game in restored:
        _epoch(fresh, game, data, EPOCHS + 1, seed=9)
    a, b = (fresh.generator for fresh, _ in restored)
    assert int(a.steps) == int(pair.generator.steps) + len(data.labels) // SMALL["batch_size"]
    assert not torch.equal(a.ema.linear.weight, ema_before)
    assert _same_state(a.state_dict(), b.state_dict())


def test_evaluate_scores_every_class_and_their_means(trained, data):
    params, pair, _ = trained
    metrics = FAMILY.evaluate(pair.generator, params, data, 0)
    names = [f"{metric}/{c}" for metric in ("kid", "judge_accuracy", "diversity")
             for c in (*data.classes, "mean")]
    assert set(names) <= set(metrics) and all(np.isfinite(metrics[n]) for n in names)
    per_class = [metrics[f"kid/{c}"] for c in data.classes]
    assert metrics["kid/mean"] == pytest.approx(np.mean(per_class))
    grid = FAMILY.pictures(pair.generator, params, data, 0)["samples_by_class"]
    assert grid.shape[0] == 3 and 0 <= grid.min() and grid.max() <= 1


def test_export_from_a_checkpoint_gives_every_class_from_the_average(trained, data, tmp_path):
    params, pair, _ = trained
    save_state(tmp_path, pair, EPOCHS)
    spec = {"kind": KIND, "params": SMALL, "seed": 3}
    generator, by_class = sample_from_checkpoint(spec, tmp_path, data, 5)
    assert list(by_class) == list(data.classes)
    assert all(a.shape == (5, 64, 64, 3) and a.dtype == np.uint8 for a in by_class.values())
    direct = FAMILY.export(pair.generator, params, data, 5, sample_seed(spec))
    assert all(np.array_equal(by_class[c], direct[c]) for c in data.classes)
    assert _same_state(generator.ema.state_dict(), pair.generator.ema.state_dict())


def test_32_pixel_images_build_train_and_export():
    rng = np.random.default_rng(1)
    small = I.ImageData("small", rng.integers(0, 255, (16, 32, 32, 3), dtype=np.uint8),
                        np.repeat(np.arange(2), 8), ("a", "b"), {}, {})
    params, pair, game = _pair_and_game(small)
    _epoch(pair, game, small, 1, seed=0)
    exported = FAMILY.export(pair.generator, params, small, 2, 0)
    assert [a.shape for a in exported.values()] == [(2, 32, 32, 3)] * 2


# --------------------------------------------------------------------------- regularisers

TINY_DATA = {"lecam": 0.3, "consistency": 10.0, "transition_start": 2, "transition_end": 10}


def _condition_weights(pair) -> list[float]:
    """G's (raw and average) and D's `condition_weight`."""
    G = pair.generator
    return [float(G.raw.condition_weight), float(G.ema.condition_weight),
            float(pair.discriminator.condition_weight)]


def test_off_by_default_the_models_stay_fully_conditional_and_d_keeps_no_averages(trained):
    params, pair, stats = trained
    assert (params.lecam, params.consistency, params.transition_end) == (0.0, 0.0, 0)
    assert _condition_weights(pair) == [1.0, 1.0, 1.0]
    assert not hasattr(pair.discriminator, "lecam")
    assert not any(key.startswith("lecam.") for key in pair.discriminator.state_dict())
    assert set(stats[0]) == {"loss/d", "loss/g", "d_acc", "d_acc/real", "d_acc/fake"}


def test_the_condition_weight_rises_from_0_to_1_between_its_g_steps(data):
    torch.manual_seed(0)
    _, pair, game = _pair_and_game(data, transition_start=1, transition_end=3)
    images, labels = FAMILY.real_rows(data, CPU)
    seen = [_condition_weights(pair)]
    for _ in range(4):  # one G step each
        gan_epoch(pair, [(images[:8], labels[:8])], game, 1)
        seen.append(_condition_weights(pair))
    assert seen == [[0.0] * 3, [0.0] * 3, [0.5] * 3, [1.0] * 3, [1.0] * 3]


def test_an_impossible_transition_is_refused_when_the_settings_are_built():
    with pytest.raises(ValueError, match="transition_start"):
        params_from(KIND, {**SMALL, "transition_start": 10, "transition_end": 10})


def test_lecam_and_consistency_train_and_report_and_d_keeps_lecams_averages(data):
    torch.manual_seed(0)
    _, pair, game = _pair_and_game(data, **TINY_DATA)
    assert game.regularise.lecam == 0.3 and game.regularise.consistency == 10.0
    stats = _epoch(pair, game, data, 1, seed=1)
    assert stats["reg/lecam"] >= 0 and stats["reg/consistency"] > 0
    assert all(np.isfinite(v) for v in stats.values())
    steps = len(data.labels) // SMALL["batch_size"]
    assert int(pair.discriminator.lecam.steps) == steps  # one update per D step
    assert {"lecam.sums", "lecam.steps"} <= set(pair.discriminator.state_dict())
    # the term is the one that was added: the game's D loss is the hinge plus both terms
    pair.discriminator.eval()
    images, labels = FAMILY.real_rows(data, CPU)
    z, fake_labels = game.sample(8)
    fake = pair.generator(z, fake_labels).detach()
    torch.manual_seed(5)
    loss, terms = game.d_loss((images[:8], labels[:8]), fake, (z, fake_labels), 2)
    torch.manual_seed(5)
    D = game.D
    hinge = LOSSES["hinge"][0](D(images[:8], labels[:8]), D(fake, fake_labels))
    expected = hinge + 0.3 * terms["reg/lecam"] + 10.0 * terms["reg/consistency"]
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_a_resumed_trial_keeps_its_condition_weight_and_lecam_averages(data, tmp_path):
    torch.manual_seed(0)
    _, pair, game = _pair_and_game(data, **TINY_DATA)
    _epoch(pair, game, data, 1, seed=1)  # 4 G steps: weight (4 - 2) / 8
    assert _condition_weights(pair) == [0.25] * 3
    save_state(tmp_path, pair, 1)
    state = load_state(tmp_path)  # weights_only=True
    _, fresh, fresh_game = _pair_and_game(data, **TINY_DATA)
    assert _condition_weights(fresh) == [0.0] * 3  # built afresh: unconditional ...
    for name in ("generator", "discriminator", "g_opt", "d_opt"):
        getattr(fresh, name).load_state_dict(state[name])
    assert _condition_weights(fresh) == [0.25] * 3  # ... until the checkpoint says otherwise
    assert torch.equal(fresh.discriminator.lecam.sums, pair.discriminator.lecam.sums)
    # and it goes on exactly as the trial that was never stopped
    _epoch(pair, game, data, 2, seed=9)
    _epoch(fresh, fresh_game, data, 2, seed=9)
    assert _condition_weights(fresh) == [0.75] * 3
    for name in ("generator", "discriminator"):
        assert _same_state(getattr(fresh, name).state_dict(), getattr(pair, name).state_dict())


def test_a_checkpoint_from_before_the_condition_weight_still_loads(trained, data, tmp_path):
    _, pair, _ = trained
    save_state(tmp_path, pair, EPOCHS)
    state = load_state(tmp_path)
    for name in ("generator", "discriminator"):
        state[name] = {k: v for k, v in state[name].items() if "condition_weight" not in k}
    assert "raw.linear.weight" in state["generator"]
    _, fresh, _ = _pair_and_game(data)
    for name in ("generator", "discriminator"):
        getattr(fresh, name).load_state_dict(state[name])  # strict
    assert _condition_weights(fresh) == [1.0] * 3
    assert torch.equal(I.generate(fresh.generator, 3, 0, 2), I.generate(pair.generator, 3, 0, 2))
