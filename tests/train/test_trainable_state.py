"""A trial's checkpoint holds what resuming needs, and loads with weights_only=True."""

import torch
from torch import nn

from farm.gan.gan_loop import GanPair
from farm.tune.trainable import load_keeping_rates, load_state, save_state


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


def test_the_kept_epoch_is_the_best_checkpoint_that_still_exists(tmp_path):
    from ray import tune

    from farm.tune.runner import best_kept

    made = {}
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        made[name] = tune.Checkpoint(str(tmp_path / name))
    deleted = tune.Checkpoint(str(tmp_path / "deleted"))
    listed = [(made["a"], {"kid": 0.3}), (deleted, {"kid": 0.1}), (made["b"], {"kid": 0.2}),
              (made["c"], {"kid": float("nan")})]
    best, metrics = best_kept(listed, "kid", "min")
    assert best is made["b"] and metrics == {"kid": 0.2}
    assert best_kept(listed, "kid", "max")[0] is made["a"]
    assert best_kept([(deleted, {"kid": 0.1})], "kid", "min") == (None, {})


def test_the_kept_epoch_follows_the_reported_rank_where_a_tie_break_made_one(tmp_path):
    from ray import tune

    from farm.tune.runner import best_kept
    from farm.tune.schedulers import RANK, select_rank

    select = {"metric": "useful", "mode": "max", "tie": "kid", "tolerance": 0.01}
    reports = {"first": {"useful": 0.001, "kid": 40.0}, "later": {"useful": 0.000, "kid": 6.0},
               "worse": {"useful": 0.000, "kid": 9.0}}
    listed = []
    for name, metrics in reports.items():
        (tmp_path / name).mkdir()
        listed.append((tune.Checkpoint(str(tmp_path / name)),
                       {**metrics, RANK: select_rank(metrics, select)}))
    best, _ = best_kept(listed, "useful", "max")
    assert best.path == str(tmp_path / "later")  # a tie on usefulness: the lower KID decides
    plain = [(c, {k: v for k, v in m.items() if k != RANK}) for c, m in listed]
    assert best_kept(plain, "useful", "max")[0].path == str(tmp_path / "first")
