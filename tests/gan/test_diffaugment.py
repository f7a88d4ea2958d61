"""DiffAugment: shapes, identity when off, what each transform does, reproducible draws,
gradients through it to G, clear errors, and image games that train with it on."""

import numpy as np
import pytest
import torch
from torch import nn

from farm.config.family_params import params_from
from farm.data.trial_data import ImageData
from farm.families.kinds import KINDS
from farm.gan.diffaugment import (AUGMENTATIONS, Augmented, augmented, brightness, contrast, cutout,
                                  diff_augment, saturation, translation)
from farm.gan.gan_loop import RealVsFake, Tricks, gan_epoch, shuffled_batches
from farm.infra.errors import ConfigError
from farm.models.images import DCGANDiscriminator, G1

FULL = "color,translation,cutout"
OPS = {"brightness": brightness, "saturation": saturation, "contrast": contrast,
       "translation": translation, "cutout": cutout}


def _images(n=4, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _rng(seed=1):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", FULL, " color , cutout "])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_shape_and_dtype_are_kept(policy, size):
    x = _images(size=size)
    out = diff_augment(x, policy, _rng())
    assert out.shape == x.shape and out.dtype == x.dtype and out.is_contiguous()
    assert torch.isfinite(out).all()


def test_channels_last_images_come_back_channels_last_with_the_same_values_but_rounding():
    x = _images(size=16)
    laid = x.contiguous(memory_format=torch.channels_last)
    out = diff_augment(laid, FULL, _rng())
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert torch.allclose(out, diff_augment(x, FULL, _rng()), atol=1e-6)  # sums reordered


def test_empty_policy_is_the_identity_and_wraps_nothing():
    x = _images()
    assert torch.equal(diff_augment(x, ""), x) and torch.equal(diff_augment(x, " , "), x)
    D = DCGANDiscriminator(4)
    assert augmented(D, "") is D
    assert isinstance(augmented(D, "cutout"), Augmented)


@pytest.mark.parametrize("name", list(OPS))
def test_every_transform_changes_the_image(name):
    x = _images(n=8)
    out = OPS[name](x, _rng())
    assert out.shape == x.shape
    changed = (out - x).abs().flatten(1).amax(1) > 1e-6
    assert changed.sum() >= 6, name  # a per-image draw may, rarely, leave one image alone


def test_policy_names_compose_their_table_entries_in_order():
    assert set(AUGMENTATIONS) == {"color", "translation", "cutout"}
    x = _images()
    rng = _rng()
    expected = x
    for op in (brightness, saturation, contrast, translation, cutout):
        expected = op(expected, rng)
    assert torch.equal(diff_augment(x, FULL, _rng()), expected)


def test_translation_shifts_by_at_most_an_eighth_and_fills_with_zeros():
    x = torch.ones(64, 3, 32, 32)
    out = translation(x, _rng())
    zeros = (out == 0).all(1)                        # [N, H, W] pixels shifted in from outside
    assert torch.all((out == 0) | (out == 1))
    rows, cols = zeros.all(2).sum(1), zeros.all(1).sum(1)  # whole empty rows / columns
    assert rows.max() <= 4 and cols.max() <= 4       # 32 / 8
    assert (rows > 0).any() and (cols > 0).any()
    # content moves, not rescales: a shifted ramp is still a ramp
    ramp = torch.arange(32.0).view(1, 1, 1, 32).expand(1, 3, 32, 32).contiguous()
    moved = translation(ramp, _rng(4))[0, 0, 16]
    kept = moved[moved > 0]
    assert torch.all(kept[1:] - kept[:-1] == 1)


def test_cutout_zeroes_one_square_of_half_the_side_at_most():
    x = torch.ones(64, 3, 32, 32)
    out = cutout(x, _rng())
    zeroed = (out == 0).all(1).flatten(1).sum(1)
    assert torch.all((out == 0) | (out == 1))
    assert zeroed.max() == 16 * 16 and zeroed.min() > 0  # clipped at the edge, never bigger


def test_a_generator_repeats_the_draws():
    x = _images()
    assert torch.equal(diff_augment(x, FULL, _rng(5)), diff_augment(x, FULL, _rng(5)))
    assert not torch.equal(diff_augment(x, FULL, _rng(5)), diff_augment(x, FULL, _rng(6)))


def test_gradients_flow_through_the_augmentation_to_the_generator():
    torch.manual_seed(0)
    G, D = G1(noise_dim=8, width=4), DCGANDiscriminator(4)
    seen = Augmented(D, FULL)
    z = torch.randn(4, 8, 1, 1)
    x = G(z)
    x.retain_grad()
    seen(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_extra_arguments_pass_through_to_the_discriminator():
    class Labelled(nn.Module):
        def forward(self, x, labels):
            return x.mean((1, 2, 3)) + labels

    out = Augmented(Labelled(), "cutout")(_images(), torch.arange(4.0))
    assert out.shape == (4,)


def test_gradient_penalty_works_through_the_augmentation():
    torch.manual_seed(0)
    G, D = G1(noise_dim=8, width=4), DCGANDiscriminator(4)
    game = RealVsFake(Augmented(D, FULL), lambda n: (torch.randn(n, 8, 1, 1),),
                      Tricks(loss="wasserstein", gradient_penalty=10.0))
    real, fake = _images(4, 64), G(torch.randn(4, 8, 1, 1))
    loss, _ = game.d_loss(real, fake.detach(), None, 1)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in D.parameters())


@pytest.mark.parametrize("policy", ["colour", "color,zoom"])
def test_an_unknown_policy_is_a_config_error_naming_the_known_ones(policy):
    bad = policy.split(",")[-1]
    for call in (lambda: diff_augment(_images(), policy), lambda: Augmented(nn.Identity(), policy),
                 lambda: augmented(nn.Identity(), policy)):
        with pytest.raises(ConfigError) as info:
            call()
        assert repr(bad) in str(info.value)
        assert "color, cutout, translation" in str(info.value)


@pytest.fixture(scope="module")
def colours():
    """A tiny two-class dataset; no judge, since nothing here is scored."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 8)
    images = rng.integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    return ImageData("colours", images, labels, ("a", "b"), {}, {})


@pytest.mark.parametrize("kind", ["fruit-pairs", "spiked"])
def test_image_games_train_with_diffaug_on(colours, kind):
    torch.manual_seed(0)
    family = KINDS[kind]
    view = family.view(colours, {"class": "a"})
    params = params_from(kind, {"g_width": 4, "discriminator": "DCGAN", "d_width": 4,
                                "batch_size": 4, "diffaug": FULL})
    pair = family.build(params, view, torch.device("cpu"))
    game = family.game(params, view, pair, torch.device("cpu"))
    assert isinstance(game.D, Augmented) and game.D.discriminator is pair.discriminator
    before = [p.clone() for p in pair.generator.parameters()]
    real = family.real_rows(view, torch.device("cpu"))
    stats = gan_epoch(pair, shuffled_batches(real, 4, _rng()), game, epoch=1)
    assert all(np.isfinite(v) for v in stats.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, pair.generator.parameters()))
    # the pair keeps the bare discriminator: checkpoints look as they do without diffaug
    assert not any(k.startswith("discriminator.") for k in pair.discriminator.state_dict())


def test_image_games_refuse_an_unknown_policy_when_built(colours):
    params = params_from("spiked", {"g_width": 4, "discriminator": "DCGAN", "d_width": 4,
                                          "diffaug": "color,flip"})
    pair = KINDS["spiked"].build(params, colours, torch.device("cpu"))
    with pytest.raises(ConfigError, match="'flip'"):
        KINDS["spiked"].game(params, colours, pair, torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_it_stays_there_without_a_host_sync():
    x = _images(8, 64).cuda().requires_grad_(True)
    rng = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = diff_augment(x, FULL, rng)
        out.sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.device == x.device and x.grad is not None
    assert torch.equal(out, diff_augment(x, FULL, torch.Generator(device="cuda").manual_seed(0)))
