"""The shared GAN epoch: every loss trains, tricks are applied, batches cover the data."""

import pytest
import torch

from farm.gan.gan_loop import (LOSSES, GanPair, RealVsFake, Tricks, gan_epoch, gradient_penalty,
                               read_back, shuffled_batches)
from farm.models.tabular import MLPDiscriminator, MLPGenerator


def _pair(pack=1, lr=1e-2):
    torch.manual_seed(0)
    G = MLPGenerator(4, 3, (16,), output="sigmoid")
    D = MLPDiscriminator(3, (16,), pack=pack)
    betas = (0.5, 0.9)
    return GanPair(G, D, torch.optim.Adam(G.parameters(), lr, betas=betas),
                   torch.optim.Adam(D.parameters(), lr, betas=betas))


def _game(pair, tricks):
    return RealVsFake(pair.discriminator, lambda n: (torch.randn(n, 4),), tricks)


def _real(n=128):
    g = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, generator=g) * 0.2 + torch.tensor([0.7, 0.1, 0.5])


@pytest.mark.parametrize("tricks", [
    Tricks(),
    Tricks(real_label=0.9, flip_every=1, flip_fraction=0.1, instance_noise=0.2),
    Tricks(loss="hinge"),
    Tricks(loss="wasserstein", gradient_penalty=10.0),
])
def test_every_loss_trains_and_reports_finite_numbers(tricks):
    pair = _pair()
    before = [p.clone() for p in pair.generator.parameters()]
    gen = torch.Generator().manual_seed(0)
    stats = gan_epoch(pair, shuffled_batches(_real(), 32, gen), _game(pair, tricks), epoch=1)
    assert set(stats) == {"loss/d", "loss/g", "d_acc/real", "d_acc/fake", "d_acc"}
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert 0.0 <= stats["d_acc"] <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, pair.generator.parameters()))


def test_generator_learns_a_simple_distribution():
    pair = _pair(lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    real = _real(256)
    noise = torch.randn(512, 4, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        start = (pair.generator(noise).mean(0) - real.mean(0)).norm()
    for epoch in range(1, 61):
        gan_epoch(pair, shuffled_batches(real, 64, gen), _game(pair, Tricks()), epoch)
    with torch.no_grad():
        end = (pair.generator(noise).mean(0) - real.mean(0)).norm()
    # An untrained G sits near 0.5 everywhere; training must halve the gap to the real means.
    assert end < 0.5 * start, (float(start), float(end))


def test_packed_discriminator_works_in_the_loop():
    pair = _pair(pack=4)
    gen = torch.Generator().manual_seed(0)
    stats = gan_epoch(pair, shuffled_batches(_real(), 32, gen),
                      _game(pair, Tricks(real_label=0.9, flip_every=1, flip_fraction=0.2)), epoch=1)
    assert torch.isfinite(torch.tensor(stats["loss/d"]))


def test_epochs_can_stay_on_the_device_and_be_read_back_together():
    """The trainable keeps each epoch's means on the device and reads a window back at once;
    the result is the mean of what each epoch would have read back alone."""
    pair = _pair()
    gen = torch.Generator().manual_seed(0)
    window = [gan_epoch(pair, shuffled_batches(_real(), 32, gen), _game(pair, Tricks()), epoch,
                        sync=False) for epoch in (1, 2, 3)]
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in window[0].values())
    alone = [read_back([epoch]) for epoch in window]
    together = read_back(window)
    assert set(together) == set(alone[0])
    for key, value in together.items():
        assert abs(value - sum(a[key] for a in alone) / 3) < 1e-6


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    D = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        D.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]))  # |grad| = 1 everywhere
    critic = lambda x: D(x).squeeze(1)  # noqa: E731
    assert gradient_penalty(critic, torch.rand(8, 3), torch.rand(8, 3)).detach() < 1e-10


def test_shuffled_batches_cover_the_data_once():
    data = torch.arange(100.0).unsqueeze(1)
    batches = list(shuffled_batches(data, 32, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [32, 32, 32]  # ragged tail dropped
    seen = torch.cat(batches).squeeze(1)
    assert len(set(seen.tolist())) == 96
    small = list(shuffled_batches(data[:10], 32, torch.Generator().manual_seed(0)))
    assert [len(b) for b in small] == [10]  # fewer rows than a batch: one batch, not none


def test_losses_table_has_d_and_g_terms():
    for d_loss, g_loss in LOSSES.values():
        real, fake = torch.randn(4), torch.randn(4)
        assert d_loss(real, fake, torch.ones(4), torch.zeros(4)).dim() == 0
        assert g_loss(fake).dim() == 0
