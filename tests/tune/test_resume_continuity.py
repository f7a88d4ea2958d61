"""A trial that resumes its own checkpoint trains the very epoch it would have trained.

The trainable runs here with Tune's session replaced by a recorder, on tabular-b with the
surrogate's extra distillation steps (the one game that keeps an optimizer of its own): an
uninterrupted two-epoch trial against one stopped after epoch 1 and resumed from its checkpoint.
"""

import shutil
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from farm.data.prepare_tables import attach_black_box, prepare_table
from farm.gan.checkpoint import load_state
from farm.tune import trainable


class FakeTune:
    """What train_gan asks of `ray.tune`: a checkpoint to resume, and a place to report."""

    def __init__(self, keep: Path, resume_from: Path | None = None):
        self.keep, self.resume_from, self.reported = keep, resume_from, []
        self.Checkpoint = SimpleNamespace(from_directory=lambda d: d)
        trial_dir = keep / "trial"
        self.get_context = lambda: SimpleNamespace(get_trial_dir=lambda: str(trial_dir))

    def get_checkpoint(self):
        if self.resume_from is None:
            return None
        folder = self.resume_from
        return SimpleNamespace(as_directory=lambda: nullcontext(folder))

    def report(self, metrics, checkpoint):
        epoch = metrics["epoch"]
        shutil.copytree(checkpoint, self.keep / f"epoch{epoch}")
        self.reported.append(metrics)


@pytest.fixture(scope="module")
def german(shared_data, tmp_path_factory):
    prepared = prepare_table("german_credit", shared_data / "german_credit" / "german_credit.arff",
                             None, {}, tmp_path_factory.mktemp("exp"), 0)
    attach_black_box(prepared, 0)
    return {"german_credit": prepared.trial_data}


def _spec(epochs: int) -> dict:
    params = {"conf_net": True, "conf_weight": 50.0, "surrogate_steps": 3,
              "surrogate_warmup": 20, "batch_size": 64, "eval_requests": 4, "metric_trees": 5,
              "eval_rows": 64}
    return {"trial": {"kind": "tabular-b", "dataset": "german_credit", "class": None,
                      "params": params, "epochs": epochs, "eval_every": 1, "seed": 11,
                      "select": {"metric": "select/score", "mode": "max"}, "scheduler": {}}}


def _run(monkeypatch, datasets, epochs, keep, resume_from=None) -> FakeTune:
    fake = FakeTune(keep, resume_from)
    monkeypatch.setattr(trainable, "tune", fake)
    trainable.train_gan(_spec(epochs), datasets)
    return fake


def test_a_resumed_trial_trains_the_epoch_it_would_have(german, monkeypatch, tmp_path):
    whole, first, resumed = (tmp_path / name for name in ("whole", "first", "resumed"))
    for folder in (whole, first, resumed):
        folder.mkdir()
    _run(monkeypatch, german, 2, whole)
    _run(monkeypatch, german, 1, first)
    _run(monkeypatch, german, 2, resumed, resume_from=first / "epoch1")

    straight, again = load_state(whole / "epoch2"), load_state(resumed / "epoch2")
    assert again["epoch"] == 2 and again["game"]["surrogate_opt"]["state"]
    for part in ("generator", "discriminator"):
        for name, tensor in straight[part].items():
            assert torch.equal(tensor, again[part][name]), f"{part}.{name} differs after resume"
    assert straight["game"]["surrogate_opt"]["state"][0]["step"] == \
        again["game"]["surrogate_opt"]["state"][0]["step"]


def test_a_checkpoint_of_another_seed_does_not_hand_over_its_random_streams():
    """After a PBT exploit the checkpoint is the donor's: the trial keeps its own noise."""
    torch.manual_seed(5)
    donor = {"seed": 99, "rng": torch.get_rng_state(), "order": torch.Generator().get_state()}
    torch.manual_seed(6)
    mine = torch.get_rng_state()
    order = trainable.random_streams(donor, seed=11, start=4)
    assert torch.equal(torch.get_rng_state(), mine)
    assert torch.equal(order.get_state(), torch.Generator().manual_seed(15).get_state())
    own = trainable.random_streams({**donor, "seed": 11}, seed=11, start=4)
    assert torch.equal(torch.get_rng_state(), donor["rng"])
    assert torch.equal(own.get_state(), donor["order"])
