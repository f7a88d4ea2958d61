"""The small-data regularisers: LeCam's term on a hand-computed case and its averages in D's
state_dict, the consistency term, the transitional ramp, and that all of it is a no-op when off."""

import io

import pytest
import torch
from torch import nn

from farm.config.family_params import check_transition
from farm.gan.gan_loop import LOSSES, RealVsFake, Tricks
from farm.gan.regularisers import (LeCam, Regularisers, condition_ramp, consistency, keep_lecam,
                                   regularisers, transition)
from farm.infra.errors import ConfigError


class Flat(nn.Module):
    """A deterministic D on [N, 3, 8, 8] images: one linear score each."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * 8 * 8, 1)

    def forward(self, x):
        return self.linear(x.flatten(1)).squeeze(1)


def _images(n=6, seed=1):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_off_adds_nothing_and_reports_nothing():
    loss = torch.tensor(1.5)
    out, stats = Regularisers()(loss, torch.ones(3), -torch.ones(3), _images(3))
    assert out is loss and stats == {}
    D = Flat()
    assert not hasattr(D, "lecam")
    out, stats = regularisers(D)(loss, torch.ones(3), -torch.ones(3), _images(3))
    assert out is loss and stats == {}


def test_lecam_by_hand():
    tracker = LeCam(decay=0.99)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0])
    # first step: the bias-corrected averages are this batch's means, 2 and -1
    expected = ((torch.relu(real + 1) ** 2).mean() + (torch.relu(2 - fake) ** 2).mean())
    assert expected == pytest.approx(20.0)
    assert float(tracker(real, fake)) == pytest.approx(20.0, rel=1e-5)
    assert tracker.averages().tolist() == pytest.approx([2.0, -1.0], rel=1e-5)
    # second step: a batch of zeros moves the averages by the decay, bias-corrected
    zeros = torch.zeros(2)
    ema_real = 0.99 * 0.01 * 2 / (1 - 0.99 ** 2)
    ema_fake = 0.99 * 0.01 * -1 / (1 - 0.99 ** 2)
    term = tracker(zeros, zeros)
    assert tracker.averages().tolist() == pytest.approx([ema_real, ema_fake], rel=1e-5)
    assert float(term) == pytest.approx(ema_fake ** 2 + ema_real ** 2, rel=1e-5)
    assert int(tracker.steps) == 2


def test_lecam_is_weighted_into_the_loss_and_its_gradient_reaches_d_only_through_outputs():
    D = Flat()
    tracker = keep_lecam(D)
    assert D.lecam is tracker and not list(tracker.parameters())
    out_real, out_fake = D(_images(seed=1)), D(_images(seed=2))
    loss, stats = regularisers(D, lecam=0.3)(torch.tensor(0.0), out_real, out_fake, None)
    assert float(loss.detach()) == pytest.approx(0.3 * float(stats["reg/lecam"]))
    assert float(stats["reg/lecam"]) >= 0
    loss.backward()
    assert tracker.sums.grad is None and D.linear.weight.grad is not None


def test_lecam_averages_survive_a_weights_only_state_dict_round_trip():
    D = Flat()
    keep_lecam(D)
    for seed in range(3):
        D.lecam(D(_images(seed=seed)), D(_images(seed=seed + 10)))
    assert {"lecam.sums", "lecam.steps", "linear.weight"} <= set(D.state_dict())
    buffer = io.BytesIO()
    torch.save(D.state_dict(), buffer)
    buffer.seek(0)
    fresh = Flat()
    keep_lecam(fresh)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh.lecam.sums, D.lecam.sums) and int(fresh.lecam.steps) == 3
    real, fake = torch.randn(4), torch.randn(4)
    assert torch.equal(fresh.lecam(real, fake), D.lecam(real, fake))  # and continue alike


def test_lecam_needs_its_tracker():
    with pytest.raises(ValueError, match="keep_lecam"):
        regularisers(Flat(), lecam=0.3)


def test_consistency_is_zero_for_the_identity_and_positive_for_a_transform():
    D, x = Flat(), _images()
    assert float(consistency(D, x, D(x), "").detach()) == 0.0
    torch.manual_seed(0)
    term = consistency(D, x, D(x), "translation,cutout").detach()
    assert float(term) > 0
    torch.manual_seed(0)
    loss, stats = regularisers(D, consistency=10.0)(torch.tensor(1.0), D(x), None, x)
    assert float(stats["reg/consistency"]) == pytest.approx(float(term))
    assert float(loss.detach()) == pytest.approx(1.0 + 10.0 * float(term))
    with pytest.raises(ConfigError):
        regularisers(D, consistency=10.0, augment="")


def test_real_vs_fake_adds_the_terms_only_when_asked():
    D = Flat()
    keep_lecam(D)
    real, fake = _images(seed=1), _images(seed=2)
    plain = RealVsFake(D, lambda n: (torch.randn(n, 4),), Tricks(loss="hinge"))
    loss, stats = plain.d_loss(real, fake, None, 1)
    assert torch.equal(loss, LOSSES["hinge"][0](D(real), D(fake)))
    assert set(stats) == {"d_acc/real", "d_acc/fake", "d_acc"}
    with_lecam = RealVsFake(D, plain.sample, Tricks(loss="hinge"), regularisers(D, lecam=0.3))
    loss, stats = with_lecam.d_loss(real, fake, None, 1)
    expected = LOSSES["hinge"][0](D(real), D(fake)) + 0.3 * stats["reg/lecam"]
    assert float(loss.detach()) == pytest.approx(float(expected.detach()))


def test_the_ramp_rises_linearly_between_start_and_end():
    steps = torch.arange(8)
    assert condition_ramp(steps, 2, 6).tolist() == [0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    check_transition(0, 0)  # off
    check_transition(0, 5)
    for start, end in ((5, 5), (6, 5), (-1, 5)):
        with pytest.raises(ValueError, match="transition_start"):
            check_transition(start, end)


def test_transition_sets_every_condition_weight_after_each_step():
    class Conditioned(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)
            self.register_buffer("condition_weight", torch.ones(()))

    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    model, other, counter = Conditioned(), nn.Sequential(Conditioned()), Counter()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.register_step_post_hook(lambda *_: counter.steps.add_(1))  # first, as `follow` does
    transition(counter, 1, 3, opt, model, other)
    seen = [float(model.condition_weight)]
    for _ in range(4):
        model.linear(torch.ones(1, 2)).sum().backward()
        opt.step()
        seen.append(float(model.condition_weight))
        assert float(other[0].condition_weight) == seen[-1]
    assert seen == [0.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="condition_weight"):
        transition(counter, 1, 3, opt, nn.Linear(2, 1))
