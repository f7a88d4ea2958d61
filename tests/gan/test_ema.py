"""The EMA generator: warm start, the average's arithmetic, which weights each mode runs, the
optimizer hook, and a state_dict that carries both."""

import pytest
import torch
from torch import nn

from farm.gan.ema import EMAGenerator, follow


class Tiny(nn.Module):
    noise_shape = (2,)

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.norm = nn.BatchNorm1d(2)

    def forward(self, z):
        return self.norm(self.linear(z))


def _trained(decay, start, steps):
    torch.manual_seed(0)
    G = EMAGenerator(Tiny(), decay, start)
    opt = torch.optim.SGD(G.raw.parameters(), lr=0.1)
    follow(G, opt)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        G(torch.randn(8, 2)).pow(2).sum().backward()
        opt.step()
        history.append(G.raw.linear.weight.detach().clone())
    return G, opt, history


def test_the_average_copies_during_the_warm_start_then_decays():
    G, _, history = _trained(decay=0.5, start=2, steps=4)
    assert int(G.steps) == 4
    expected = history[1]                      # steps 1-2: a copy
    for weight in history[2:]:                 # steps 3-4: 0.5 * ema + 0.5 * raw
        expected = 0.5 * expected + 0.5 * weight
    assert torch.allclose(G.ema.linear.weight, expected)
    assert not torch.allclose(G.ema.linear.weight, G.raw.linear.weight)
    # batch-norm statistics are copied, not averaged
    assert torch.equal(G.ema.norm.running_mean, G.raw.norm.running_mean)


def test_train_mode_runs_raw_and_eval_mode_runs_the_average():
    G, _, _ = _trained(decay=0.9, start=0, steps=3)
    z = torch.randn(5, 2)
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z), G.ema.eval()(z))
        assert not torch.equal(G(z), G.raw.eval()(z))
    G.train()
    assert G.raw.training and G(z).requires_grad


def test_only_raw_is_trained_and_the_state_dict_carries_both():
    G, opt, _ = _trained(decay=0.9, start=0, steps=3)
    assert not any(p.requires_grad for p in G.ema.parameters())
    assert {id(p) for group in opt.param_groups for p in group["params"]} == {
        id(p) for p in G.raw.parameters()}
    state = G.state_dict()
    assert {"steps", "raw.linear.weight", "ema.linear.weight", "ema.norm.running_var"} <= set(state)
    fresh = EMAGenerator(Tiny(), 0.9, 0)
    fresh.load_state_dict(state)
    assert int(fresh.steps) == 3
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), state.values()))


def test_a_decay_of_one_or_more_is_refused():
    with pytest.raises(ValueError, match="decay"):
        EMAGenerator(Tiny(), 1.0)
