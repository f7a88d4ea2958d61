"""A gang's stacked model and step against its members alone (farm.models.stacked,
farm.gan.stacked): same outputs, same gradients, same Adam steps, member by member."""

from __future__ import annotations

import pytest
import torch

from farm.gan.gan_loop import LOSSES, GanPair, RealVsFake, Tricks
from farm.gan.stacked import (StackedAdam, StackedRealVsFake, member_weights, read_back_members,
                              stack_pairs, stacked_batches, stacked_epoch)
from farm.models.stacked import member_state, stack
from farm.models.tabular import MLPDiscriminator, MLPGenerator

BLOCKS = [(2, 5), (5, 7)]  # two nominal columns in 9 encoded ones


def twin_grad(twin, name: str, index: int) -> torch.Tensor:
    """Member `index`'s gradient of parameter `name` in nn.Linear's layout (StackedLinear holds
    its weight as [M, in, out])."""
    grad = twin.get_parameter(name).grad[index]
    module = twin.get_submodule(name.rpartition(".")[0])
    return grad.T if name.endswith("weight") and type(module).__name__ == "StackedLinear" \
        else grad


def members(count: int, **kw) -> list[tuple[MLPGenerator, MLPDiscriminator]]:
    out = []
    for seed in range(count):
        torch.manual_seed(seed)
        G = MLPGenerator(6, 9, (16, 12), 0.2, kw.get("output", "capped_relu"),
                         nominal_blocks=BLOCKS, batchnorm=kw.get("batchnorm", False))
        D = MLPDiscriminator(9, (16, 8), 0.2, kw.get("minibatch", 0), pack=kw.get("pack", 1))
        out.append((G, D))
    return out


@pytest.mark.parametrize("kw", [{}, {"batchnorm": True}, {"minibatch": 3}, {"pack": 2},
                                {"output": "sigmoid", "batchnorm": True, "pack": 2}])
def test_stacked_forward_and_gradients_are_each_members_own(kw):
    pairs = members(3, **kw)
    G, D = stack([g for g, _ in pairs]), stack([d for _, d in pairs])
    z, x = torch.randn(3, 10, 6), torch.rand(3, 10, 9)
    out, logits = G(z), D(x)
    (out.sum() + logits.sum()).backward()
    for i, (g, d) in enumerate(pairs):
        alone_out, alone_logits = g(z[i]), d(x[i])
        (alone_out.sum() + alone_logits.sum()).backward()
        assert torch.allclose(out[i], alone_out, atol=1e-5)
        assert torch.allclose(logits[i], alone_logits, atol=1e-5)
        for name, p in g.named_parameters():
            assert torch.allclose(twin_grad(G, name, i), p.grad, atol=1e-4), name
        for name, p in d.named_parameters():
            assert torch.allclose(twin_grad(D, name, i), p.grad, atol=1e-4), name
        for name, value in g.state_dict().items():  # batch norm's running statistics too
            assert torch.allclose(member_state(G, i)[name].float(), value.float(), atol=1e-5)
    G.eval()
    for i, (g, _) in enumerate(pairs):
        g.eval()
        assert torch.allclose(G(z)[i], g(z[i]), atol=1e-5)


def test_member_state_loads_into_an_ordinary_model():
    pairs = members(2, batchnorm=True)
    G = stack([g for g, _ in pairs])
    again = stack([g for g, _ in members(2, batchnorm=True)])
    again.load_state_dict(G.state_dict())  # the stacked state dict round-trips (a resume)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), G.parameters()))
    fresh = members(1, batchnorm=True)[0][0]
    fresh.load_state_dict(member_state(G, 1))  # strict: the same keys and shapes
    for name, value in pairs[1][0].state_dict().items():
        assert torch.equal(fresh.state_dict()[name], value)


def test_stacked_adam_steps_each_member_as_torch_adam_with_its_own_rate():
    rates = [1e-3, 3e-4]
    alone = [torch.nn.Parameter(torch.randn(4, 3)) for _ in rates]
    stacked = torch.nn.Parameter(torch.stack([p.detach().clone() for p in alone]))
    optimizers = [torch.optim.Adam([p], lr, betas=(0.5, 0.9)) for p, lr in zip(alone, rates)]
    ours = StackedAdam([stacked], rates, (0.5, 0.9))
    for _ in range(5):
        grads = torch.randn(2, 4, 3)
        for p, g, opt in zip(alone, grads, optimizers):
            p.grad = g.clone()
            opt.step()
        stacked.grad.copy_(grads)  # in place: the optimizer holds slices of it
        ours.step()
    for i, p in enumerate(alone):
        assert torch.allclose(stacked[i], p, atol=1e-6)
    restored = StackedAdam([torch.nn.Parameter(stacked.detach().clone())], rates, (0.5, 0.9))
    restored.load_state_dict(ours.state_dict())
    assert restored.step_count == 5 and torch.equal(restored.exp_avg[0], ours.exp_avg[0])
    stacked.grad = torch.ones_like(stacked)  # a replaced gradient would be silently ignored
    with pytest.raises(RuntimeError, match="replaced"):
        ours.step()


def test_stacked_adam_with_one_rate_steps_the_whole_stack():
    alone = [torch.nn.Parameter(torch.randn(3, 2)) for _ in range(3)]
    stacked = torch.nn.Parameter(torch.stack([p.detach().clone() for p in alone]))
    optimizers = [torch.optim.Adam([p], 1e-3, betas=(0.5, 0.999)) for p in alone]
    ours = StackedAdam([stacked], [1e-3] * 3, (0.5, 0.999))
    assert len(ours._calls) == 1 and ours._calls[0][1][0].shape == stacked.shape
    for _ in range(3):
        grads = torch.randn(3, 3, 2)
        for p, g, opt in zip(alone, grads, optimizers):
            p.grad = g.clone()
            opt.step()
        stacked.grad.copy_(grads)
        ours.step()
    assert torch.allclose(stacked, torch.stack(alone), atol=1e-6)


@pytest.mark.parametrize("loss", ["bce", "hinge", "wasserstein"])
def test_stacked_losses_are_the_members_losses(loss):
    real, fake = torch.randn(3, 8), torch.randn(3, 8)
    t_real, t_fake = torch.full_like(real, 0.9), torch.zeros_like(fake)
    from farm.gan.stacked import STACKED_LOSSES

    d, g = STACKED_LOSSES[loss][0](real, fake, t_real, t_fake), STACKED_LOSSES[loss][1](fake)
    for i in range(3):
        assert torch.allclose(d[i], LOSSES[loss][0](real[i], fake[i], t_real[i], t_fake[i]))
        assert torch.allclose(g[i], LOSSES[loss][1](fake[i]))


def test_a_gang_step_moves_each_member_as_its_own_step_would():
    """One D and G step of a gang, on given noise and rows, against each member's own step with
    the same noise and rows. The gradients left after the G step (G's, and D's from G's loss
    through the stepped D) carry the whole chain; Adam's first step is +-lr per weight wherever
    a gradient is nonzero, so a near-zero one may tip either way: the weights are compared to
    within that."""
    pairs = members(2, batchnorm=True)
    rates = [1e-3, 2e-3]
    solo = [GanPair(g, d, torch.optim.Adam(g.parameters(), r, betas=(0.5, 0.9)),
                    torch.optim.Adam(d.parameters(), r, betas=(0.5, 0.9)))
            for (g, d), r in zip(pairs, rates)]
    gang = stack_pairs(solo, rates, rates, (0.5, 0.9))
    z, rows = torch.randn(2, 8, 6), torch.rand(2, 8, 9)
    game = StackedRealVsFake(gang.discriminator, lambda n: (z,), Tricks(real_label=0.9))
    stats = stacked_epoch(gang, [rows], game, epoch=1)
    for i, pair in enumerate(solo):
        alone = RealVsFake(pair.discriminator, lambda n, i=i: (z[i],), Tricks(real_label=0.9))
        torch.manual_seed(0)
        fake = pair.generator(z[i])
        d_loss, _ = alone.d_loss(rows[i], fake.detach(), (z[i],), 1)
        pair.d_opt.zero_grad()
        d_loss.backward()
        pair.d_opt.step()
        g_loss, _ = alone.g_loss(rows[i], fake, (z[i],), 1)
        pair.g_opt.zero_grad()
        g_loss.backward()
        pair.g_opt.step()
        assert stats["loss/d"][i].item() == pytest.approx(d_loss.item(), abs=1e-5)
        assert stats["loss/g"][i].item() == pytest.approx(g_loss.item(), abs=1e-5)
        for twin, alone in ((gang.generator, pair.generator),
                            (gang.discriminator, pair.discriminator)):
            for name, p in alone.named_parameters():
                assert torch.allclose(twin_grad(twin, name, i), p.grad, atol=1e-4), name
        G_state, D_state = member_weights(gang, i)
        for name, value in pair.generator.state_dict().items():
            assert torch.allclose(G_state[name].float(), value.float(), atol=2 * rates[i]), name
        for name, value in pair.discriminator.state_dict().items():
            assert torch.allclose(D_state[name], value, atol=2 * rates[i]), name


def test_stacked_gradient_penalty_is_each_critics_own():
    from farm.gan.stacked import stacked_gradient_penalty

    pairs = members(2)
    D = stack([d for _, d in pairs])
    real, fake = torch.rand(2, 6, 9), torch.rand(2, 6, 9)
    torch.manual_seed(1)
    ours = stacked_gradient_penalty(D, real, fake)
    torch.manual_seed(1)
    mix = torch.rand(2, 6, 1)
    for i, (_, d) in enumerate(pairs):
        points = (mix[i] * real[i] + (1 - mix[i]) * fake[i]).requires_grad_(True)
        grads, = torch.autograd.grad(d(points).sum(), points)
        assert ours[i].item() == pytest.approx(((grads.norm(dim=1) - 1) ** 2).mean().item(),
                                               rel=1e-4)


def test_stacked_batches_give_each_member_its_own_order_of_every_row():
    rows = torch.arange(10.0).unsqueeze(1)
    orders = [torch.Generator().manual_seed(s) for s in (1, 2)]
    batches = list(stacked_batches(rows, 2, 4, orders))
    assert [b.shape for b in batches] == [torch.Size([2, 4, 1])] * 2  # the last 2 rows dropped
    seen = torch.cat(batches, dim=1)[..., 0]
    assert not torch.equal(seen[0], seen[1])
    assert all(len(set(s.tolist())) == 8 for s in seen)


def test_read_back_members_averages_each_members_window():
    window = [{"loss/d": torch.tensor([1.0, 2.0])}, {"loss/d": torch.tensor([3.0, 6.0])}]
    assert read_back_members(window) == [{"loss/d": 2.0}, {"loss/d": 4.0}]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_on_a_gpu_a_gang_step_matches_the_cpu_step():
    rates = [1e-3, 2e-3]
    z, rows = torch.randn(2, 8, 6), torch.rand(2, 8, 9)
    moved = {}
    for device in ("cpu", "cuda"):
        pairs = [GanPair(g.to(device), d.to(device), None, None) for g, d in members(2)]
        gang = stack_pairs(pairs, rates, rates, (0.5, 0.9))
        game = StackedRealVsFake(gang.discriminator, lambda n, d=device: (z.to(d),), Tricks())
        stacked_epoch(gang, [rows.to(device)], game, epoch=1)
        moved[device] = member_weights(gang, 1)[0]
    for name, value in moved["cpu"].items():  # within a first Adam step (see above)
        assert torch.allclose(moved["cuda"][name].cpu(), value, atol=2 * max(rates)), name
