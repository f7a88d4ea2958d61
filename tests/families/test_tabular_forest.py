"""tabular-forest: Forest-Flow's trees learn a table, save into a weights-only checkpoint, and
run through the farm's one trainable (epochs are boosting rounds) with resume."""

import shutil
from contextlib import nullcontext
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from farm.config.family_params import ForestParams, params_from
from farm.models.forest_flow import FlowProblems, ForestFlow, booster_params, levels


def _two_blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    rows = np.c_[np.where(labels == 1, 0.5, -0.5) + 0.1 * rng.standard_normal(n),
                 0.2 * rng.standard_normal(n)]
    return rows, labels


def test_the_forest_learns_each_class_and_loads_from_a_weights_only_checkpoint(tmp_path):
    rows, labels = _two_blobs()
    problems = FlowProblems(rows, labels, n_t=8, duplicate_k=10, seed=0)
    forest = ForestFlow(2, 8, problems.class_counts)
    with pytest.raises(RuntimeError, match="not been grown"):
        forest(torch.zeros(1, 2))
    first = problems.grow(forest, 5, booster_params(4, 0.3, 0))
    later = problems.grow(forest, 5, booster_params(4, 0.3, 0))
    assert forest.rounds == 10 and later < first
    assert len(levels(8)) == 7 and all(b is not None for row in forest.boosters for b in row)

    g = torch.Generator().manual_seed(0)
    which = torch.multinomial(forest.class_probs.float(), 2000, replacement=True, generator=g)
    out = forest(torch.randn(2000, 2, generator=g), which).numpy()
    for c, mean in ((0, -0.5), (1, 0.5)):
        mine = out[which.numpy() == c]
        assert abs(mine[:, 0].mean() - mean) < 0.05 and abs(mine[:, 1].mean()) < 0.05
    assert abs(forest.class_probs[1].item() - labels.mean()) < 1e-9

    torch.save(forest.state_dict(), tmp_path / "forest.pt")
    again = ForestFlow(2, 8, [0, 0])  # as a sampler builds it: no rows
    again.load_state_dict(torch.load(tmp_path / "forest.pt", weights_only=True))
    z, c = torch.randn(16, 2), torch.tensor([0, 1] * 8)
    assert torch.equal(forest(z, c), again(z, c)) and again.rounds == 10
    with pytest.raises(RuntimeError, match="2 classes x 7 levels, the model 2 x 3"):
        ForestFlow(2, 4, [1, 1]).load_state_dict(forest.state_dict())


def test_larger_leaves_keep_samples_off_the_train_rows():
    """`min_leaf_rows`: at the reference's one-row leaves, 40 rows x 50 noise draws are learnt
    nearly by heart; leaves of 10 rows average over neighbours, so samples sit farther from
    the nearest train row."""
    from farm.metrics.tabular import distance_to_closest_record

    rng = np.random.default_rng(0)
    rows = rng.uniform(-1, 1, (40, 3))
    fresh = distance_to_closest_record(rows, rng.uniform(-1, 1, (400, 3)))["dcr/median"]
    medians = []
    for leaf_rows in (0, 10):
        problems = FlowProblems(rows, None, n_t=10, duplicate_k=50, seed=0)
        forest = ForestFlow(3, 10, problems.class_counts)
        leaf = max(1, leaf_rows * 50)  # min_child_weight: rows x noise draws
        problems.grow(forest, 30, booster_params(6, 0.3, 0, min_child_weight=leaf))
        out = forest(torch.randn(400, 3, generator=torch.Generator().manual_seed(1))).numpy()
        medians.append(distance_to_closest_record(rows, out)["dcr/median"])
    assert medians[0] < 0.6 * fresh and medians[1] > 0.8 * fresh  # measured: 0.45, 0.90


def test_forest_settings_are_checked():
    assert params_from("tabular-forest", {}) == ForestParams()
    for bad in ({"n_t": 1}, {"duplicate_k": 0}, {"eta": 0}, {"multi_strategy": "trees"},
                {"min_leaf_rows": -1}, {"privacy_floor": 2.0}):
        with pytest.raises(ValueError):
            params_from("tabular-forest", bad)


class FakeTune:
    """What train_gan asks of `ray.tune`: a checkpoint to resume, and a place to report."""

    def __init__(self, keep, resume_from=None):
        self.keep, self.resume_from, self.reported = keep, resume_from, []
        self.Checkpoint = SimpleNamespace(from_directory=lambda d: d)
        self.get_context = lambda: SimpleNamespace(get_trial_dir=lambda: str(keep / "trial"))

    def get_checkpoint(self):
        folder = self.resume_from
        return None if folder is None else SimpleNamespace(
            as_directory=lambda: nullcontext(folder))

    def report(self, metrics, checkpoint):
        shutil.copytree(checkpoint, self.keep / f"epoch{metrics['epoch']}")
        self.reported.append(metrics)


@pytest.fixture(scope="module")
def diabetes(shared_data, tmp_path_factory):
    from farm.data.prepare_tables import prepare_table

    prepared = prepare_table("diabetes", shared_data / "diabetes" / "diabetes.arff", None, {},
                             tmp_path_factory.mktemp("exp"), 0)
    return {"diabetes": prepared.trial_data}


def _run(monkeypatch, datasets, epochs, keep, resume_from=None):
    from farm.tune import trainable

    keep.mkdir()
    fake = FakeTune(keep, resume_from)
    monkeypatch.setattr(trainable, "tune", fake)
    spec = {"kind": "tabular-forest", "dataset": "diabetes", "class": None, "epochs": epochs,
            "eval_every": 1, "seed": 3, "scheduler": {},
            "params": {"n_t": 4, "duplicate_k": 3, "rounds_per_epoch": 2, "max_depth": 3,
                       "metric_trees": 5, "eval_rows": 64},
            "select": {"metric": "select/score", "mode": "max"}}
    trainable.train_gan({"trial": spec}, datasets)
    return fake


def test_a_forest_trial_reports_rounds_as_epochs_and_resumes_to_the_same_trees(
        diabetes, monkeypatch, tmp_path):
    from farm.families.tabular_forest import sample_frame
    from farm.gan.checkpoint import load_state

    whole = _run(monkeypatch, diabetes, 2, tmp_path / "whole")
    assert [m["epoch"] for m in whole.reported] == [1, 2]
    assert [m["rounds"] for m in whole.reported] == [2.0, 4.0]
    assert all(0 <= m["select/score"] <= 1 and "loss/flow" in m for m in whole.reported)
    _run(monkeypatch, diabetes, 1, tmp_path / "first")
    _run(monkeypatch, diabetes, 2, tmp_path / "resumed", resume_from=tmp_path / "first" / "epoch1")

    straight, again = (load_state(tmp_path / run / "epoch2") for run in ("whole", "resumed"))
    assert straight["g_opt"] == {} and straight["epoch"] == again["epoch"] == 2
    data, params = diabetes["diabetes"], params_from("tabular-forest", {"n_t": 4})
    frames = []
    for state in (straight, again):
        forest = ForestFlow(data.transformer.width, 4, [1, 1])
        forest.load_state_dict(state["generator"])
        frames.append(sample_frame(forest, params, data, 50, seed=1))
    assert frames[0].equals(frames[1])  # the resumed trial grew the same trees
    assert list(frames[0].columns) == list(data.fit_frame.columns)
    assert set(frames[0][data.target]) <= set(data.fit_frame[data.target])
