"""An image trial's `channels_last` and `autocast: bf16` (farm/gan/precision.py): off unless
asked for and checked when asked; on, the same pair trains in place (the optimizers still hold
its parameters, the EMA still follows), and its checkpoint samples the same images from a plain
float32 model."""

import numpy as np
import pytest
import torch

from farm.config.family_params import TabularParams, params_from
from farm.families.kinds import KINDS
from farm.gan.checkpoint import load_state, restore, save_state
from farm.gan.gan_loop import gan_epoch, shuffled_batches
from farm.gan.precision import StepPrecision

CPU = torch.device("cpu")
TINY = {
    "conditional": {"g_width": 4, "d_width": 4, "z_dim": 8, "batch_size": 8, "ema_decay": 0.5,
                    "ema_start": 1, "eval_images": 6, "kid_subsets": 3, "grid_images": 3},
    "fruit-pairs": {"g_width": 4, "discriminator": "DCGAN", "d_width": 4, "eval_images": 6,
                    "kid_subsets": 3, "grid_images": 3, "batch_size": 8, "optimizer": "adam",
                    "loss": "hinge", "diffaug": "color,translation", "lecam": 0.3,
                    "ema_decay": 0.9, "ema_start": 1},
}
FAST = {"channels_last": True, "autocast": "bf16"}


def _trial(kind, data, **changes):
    family = KINDS[kind]
    view = family.view(data, {"class": "green"})
    params = params_from(kind, {**TINY[kind], **changes})
    torch.manual_seed(0)
    pair = family.build(params, view, CPU)
    return family, view, params, pair, family.game(params, view, pair, CPU)


def test_off_by_default_and_an_unknown_autocast_is_refused():
    for kind in TINY:
        assert StepPrecision.of(params_from(kind, TINY[kind])) == StepPrecision()
    assert StepPrecision.of(TabularParams()) == StepPrecision()  # a table's steps: plain
    with pytest.raises(ValueError, match="autocast must be one of"):
        params_from("conditional", {"autocast": "fp16"})
    with pytest.raises(ValueError, match="autocast must be one of"):
        params_from("fruit-pairs", {"autocast": "bfloat16"})


def test_rows_lay_out_images_only():
    images, labels = torch.zeros(4, 3, 8, 8), torch.arange(4)
    laid = StepPrecision(channels_last=True).rows((images, labels))
    assert laid[0].is_contiguous(memory_format=torch.channels_last)
    assert laid[1] is labels
    assert StepPrecision().rows(images) is images


def test_within_one_context_every_forward_pass_sees_the_weights_as_they_are_now():
    """An epoch's steps share one context: a step's update must reach the next forward pass
    (autocast's weight cache would keep the bf16 copy made before it)."""
    torch.manual_seed(0)
    layer = torch.nn.Conv2d(3, 4, 3)
    x = torch.randn(2, 3, 8, 8)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    with StepPrecision(autocast="bf16").steps(CPU):
        before = layer(x)
        assert before.dtype == torch.bfloat16  # the step does run in bf16
        before.float().square().mean().backward()
        opt.step()
        after = layer(x)
    with StepPrecision(autocast="bf16").steps(CPU):
        fresh = layer(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, fresh)


@pytest.mark.parametrize("kind", sorted(TINY))
def test_fast_steps_train_the_same_pair_in_place(kind, data):
    family, view, params, pair, game = _trial(kind, data, **FAST)
    precision = StepPrecision.of(params)
    assert precision == StepPrecision(True, "bf16")
    held = pair.g_opt.param_groups[0]["params"][0]
    before = {name: p.detach().clone() for name, p in pair.generator.named_parameters()}
    precision.lay_out(pair)
    assert pair.g_opt.param_groups[0]["params"][0] is held  # the optimizer trains these
    for module in (pair.generator, pair.discriminator):
        conv = next(p for p in module.parameters() if p.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last)
    real = precision.rows(family.real_rows(view, CPU))
    images = real[0] if isinstance(real, tuple) else real
    assert images.is_contiguous(memory_format=torch.channels_last)
    for epoch in (1, 2):
        with precision.steps(CPU):
            stats = gan_epoch(pair, shuffled_batches(real, 8, torch.Generator().manual_seed(0)),
                              game, epoch)
    assert all(np.isfinite(v) for v in stats.values())
    after = dict(pair.generator.named_parameters())
    assert all(after[name].dtype == torch.float32 for name in before)
    raw = [n for n in before if n.startswith("raw.")]
    ema = [n for n in before if n.startswith("ema.")]
    assert raw and ema  # both families' settings here sample an EMA
    assert any(not torch.equal(before[n], after[n]) for n in raw)  # G learned
    assert any(not torch.equal(before[n], after[n]) for n in ema)  # and the average followed
    metrics = family.evaluate(pair.generator, params, view, 0)  # outside autocast: float32
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))


@pytest.mark.parametrize("kind", sorted(TINY))
def test_a_fast_trial_checkpoint_samples_the_same_from_a_plain_model(kind, data, tmp_path):
    family, view, params, pair, game = _trial(kind, data, **FAST)
    precision = StepPrecision.of(params)
    precision.lay_out(pair)
    real = precision.rows(family.real_rows(view, CPU))
    with precision.steps(CPU):
        gan_epoch(pair, shuffled_batches(real, 8, torch.Generator().manual_seed(0)), game, 1)
    save_state(tmp_path, pair, 1, game=game)

    _, _, plain_params, plain, plain_game = _trial(kind, data)
    restore(load_state(tmp_path), plain, plain_game)
    one = family.export(pair.generator, params, view, 4, 7)
    other = family.export(plain.generator, plain_params, view, 4, 7)
    assert list(one) == list(other)
    for name in one:  # uint8 images; the two memory layouts may round one pixel apart
        assert np.abs(one[name].astype(int) - other[name].astype(int)).max() <= 1


def test_eval_autocast_needs_autocast():
    with pytest.raises(ValueError, match="eval_autocast"):
        params_from("conditional", {"eval_autocast": True})


@pytest.mark.parametrize("kind", sorted(TINY))
def test_eval_autocast_draws_the_scored_images_in_bf16_and_nothing_else(kind, data, monkeypatch):
    """With `eval_autocast` the images an evaluation scores come from a bf16 draw (handed on as
    float32 images); export stays float32, and without it the scored draw is float32 too."""
    from farm.families import image_common

    family, view, params, pair, _ = _trial(kind, data, **FAST, eval_autocast=True)
    plain_params = params_from(kind, {**TINY[kind], **FAST})
    seen = []
    draw = image_common.generate

    def spy(G, n, seed, label=None, rng=None):
        images = draw(G, n, seed, label, rng)
        seen.append(images.dtype)
        return images

    for module in ("image_common", "spiked", "fruit_pairs"):
        monkeypatch.setattr(f"farm.families.{module}.generate", spy, raising=False)
    bf16 = family.evaluate(pair.generator, params, view, 0)
    assert set(seen) == {torch.bfloat16}
    seen.clear()
    full = family.evaluate(pair.generator, plain_params, view, 0)
    assert set(seen) == {torch.float32}
    assert bf16.keys() == full.keys()
    assert all(np.isfinite(v) for v in bf16.values() if isinstance(v, float))
    seen.clear()
    exported = family.export(pair.generator, params, view, 4, 7)
    assert set(seen) == {torch.float32} and all(x.dtype == np.uint8 for x in exported.values())
