"""A trial's checkpoint holds what resuming needs, and loads with weights_only=True."""

import torch
from torch import nn

from farm.gan.checkpoint import load_keeping_rates, load_state, save_state
from farm.gan.gan_loop import GanPair


def _pair() -> GanPair:
    G, D = nn.Linear(3, 4), nn.Linear(4, 1)
    return GanPair(G, D, torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters()))


def test_state_keeps_the_epoch_and_the_scheduler_history(tmp_path):
    """The smoothing window of an ASHA-run trial survives a restart instead of starting empty."""
    pair = _pair()
    save_state(tmp_path, pair, 40, [0.5, 0.25, 0.125])
    state = load_state(tmp_path)
    assert state["epoch"] == 40 and state["history"] == [0.5, 0.25, 0.125]
    fresh = _pair()
    fresh.generator.load_state_dict(state["generator"])
    assert torch.equal(fresh.generator.weight, pair.generator.weight)


def test_state_without_history_still_saves(tmp_path):
    save_state(tmp_path, _pair(), 1)
    assert load_state(tmp_path)["history"] == []


def test_a_donors_optimizer_state_keeps_this_trials_learning_rates(tmp_path):
    """After a PBT exploit the moments are the donor's, the rates the perturbed config's."""
    donor = _pair()
    donor.generator(torch.ones(2, 3)).sum().backward()
    donor.g_opt.step()
    save_state(tmp_path, donor, 30)
    G = nn.Linear(3, 4)
    mine = torch.optim.Adam(G.parameters(), lr=0.123)
    load_keeping_rates(mine, load_state(tmp_path)["g_opt"])
    assert mine.param_groups[0]["lr"] == 0.123
    assert mine.state_dict()["state"][0]["step"] == 1  # the donor's Adam step came along
    assert torch.equal(mine.state_dict()["state"][0]["exp_avg"],
                       donor.g_opt.state_dict()["state"][0]["exp_avg"])
