"""Gangs through the whole farm (farm.tune.gang): four tabular-a trials of one shape grow as one
stacked model in one Tune trial, and each is still a trial of its own to the user: its own row
in the summary, its own progress and best epoch chosen by its own selection metric, its own
ordinary checkpoint and synthetic file. A driver killed mid-gang resumes every member."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import kill_when

REPO = Path(__file__).resolve().parents[2]


def gang_preset(epochs: int, every: int) -> str:
    return f"""
description: one gang of four tabular-a trials (2 rates x 2 seeds)
families:
  tabular-a:
    epochs: {epochs}
    eval_every: {every}
    seeds: 2
    gang: 4
    search: {{variant: [stable], lr_g: [1.0e-4, 2.0e-4]}}
    params: {{metric_trees: 10}}
"""


@pytest.fixture
def gang_trials(tmp_path) -> Path:
    trials = Path(shutil.copytree(REPO / "trials", tmp_path / "trials"))
    (trials / "presets" / "gang.yaml").write_text(gang_preset(6, 2))
    (trials / "presets" / "gang-slow.yaml").write_text(gang_preset(120, 10))
    return trials


def _cli(trials: Path, preset: str, out: Path, shared_data: Path, *more) -> list[str]:
    return [sys.executable, str(REPO / "run_farm.py"), "--local", "--trials-dir", str(trials),
            "--preset", preset, "--only", "tabular-a", "--tabular-data",
            str(shared_data / "diabetes" / "diabetes.arff"), "--storage-path", str(out), *more]


def _rows(progress: Path) -> list[dict]:
    with progress.open() as f:
        return list(csv.DictReader(f))


def _last_epoch(progress: Path) -> int:
    """The last evaluated epoch in a progress file being written, or -1 while it has none."""
    try:
        return max((int(r["epoch"]) for r in _rows(progress)), default=-1)
    except (OSError, KeyError, TypeError, ValueError):  # caught mid-copy
        return -1


def test_a_gang_grows_four_trials_each_with_its_own_best_epoch(gang_trials, tmp_path,
                                                                shared_data):
    from farm.config.family_params import params_from

    out = tmp_path / "out"
    done = subprocess.run(_cli(gang_trials, "gang", out, shared_data, "--name", "g"), cwd=REPO,
                          capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gang of 4" in done.stdout
    gangs = list((out / "g" / "tune").glob("tabular-a_diabetes_gang*"))
    assert len(gangs) == 1  # one Tune trial grew them all
    summary = json.loads((out / "g" / "summary.json").read_text())
    trials = summary["trials"]
    assert [t["trial"] for t in trials] == [f"tabular-a_diabetes_{i:03d}" for i in range(4)]
    assert len({t["seed"] for t in trials}) == 4
    for trial in trials:
        assert trial["status"] == "ok" and trial["last_epoch"] == 6
        rows = _rows(Path(trial["trial_dir"]) / "progress.csv")
        assert [int(r["epoch"]) for r in rows] == [2, 4, 6]
        scores = {int(r["epoch"]): float(r["select/score"]) for r in rows}
        # its own best by its own metric, and the kept checkpoint is that epoch's weights
        assert trial["best_epoch"] == max(scores, key=scores.get)
        assert trial["metrics"]["select/score"] == pytest.approx(scores[trial["best_epoch"]])
        state = torch.load(Path(trial["checkpoint"]) / "state.pt", weights_only=True)
        assert state["epoch"] == trial["best_epoch"]
        params = params_from("tabular-a", trial["params"])
        width = state["generator"]["body.0.weight"].shape[1]
        assert width == params.noise_dim  # an ordinary generator's weights, no member axis
        assert Path(trial["synthetic_csv"]).is_file()
        assert list(Path(trial["trial_dir"]).glob("events.out.tfevents.*"))
    weights = [torch.load(Path(t["checkpoint"]) / "state.pt", weights_only=True)["generator"]
               for t in trials]
    assert not torch.equal(weights[0]["body.0.weight"], weights[1]["body.0.weight"])


def test_a_killed_gang_resumes_every_member_from_its_checkpoint(gang_trials, tmp_path,
                                                                 shared_data):
    out = tmp_path / "out"
    gang_dir = out / "k" / "tune"
    member_progress = "tabular-a_*_gang000/members/tabular-a_diabetes_002/progress.csv"

    def member_past_30() -> bool:
        # a member's folder reaches storage with the artifacts, after the checkpoint that Tune
        # persists first and sometimes more than one checkpoint behind it: wait for the folder
        found = list(gang_dir.glob(member_progress))
        return bool(found) and 30 <= _last_epoch(found[0]) < 120

    kill_when(_cli(gang_trials, "gang-slow", out, shared_data, "--name", "k"),
              tmp_path / "first.log", member_past_30)
    member = next(gang_dir.glob(member_progress)).parent
    before = [int(r["epoch"]) for r in _rows(member / "progress.csv")]
    assert 30 <= before[-1] < 120 and list(gang_dir.glob("tabular-a_*_gang000/checkpoint_*"))
    again = [sys.executable, str(REPO / "run_farm.py"), "--local", "--trials-dir",
             str(gang_trials), "--resume", "--name", "k", "--storage-path", str(out)]
    done = subprocess.run(again, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "k" / "summary.json").read_text())
    assert len(summary["trials"]) == 4
    for trial in summary["trials"]:
        epochs = [int(r["epoch"]) for r in _rows(Path(trial["trial_dir"]) / "progress.csv")]
        # every evaluation once, in order, to the end: it went on from the gang's checkpoint
        assert epochs == list(range(10, 121, 10)), trial["trial"]
        assert trial["best_epoch"] in epochs and trial["status"] == "ok"
