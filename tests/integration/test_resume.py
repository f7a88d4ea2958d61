"""A driver killed mid-run, then `--resume`: finished trials are kept, the unfinished one goes on
from its latest checkpoint, and the experiment ends complete. Real processes, real SIGKILL."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import kill_when

REPO = Path(__file__).resolve().parents[2]


def _cli(*args):
    # --local: an embedded Ray of its own, whatever cluster `ray start` may run on this machine
    return [sys.executable, str(REPO / "run_farm.py"), "--local", *args]


def _epochs(progress: Path) -> list[int]:
    with progress.open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


def _finished(trials: Path, pattern: str, epochs: list[int]) -> bool:
    found = list(trials.glob(f"{pattern}/progress.csv"))
    return bool(found) and _epochs(found[0]) == epochs


def test_killed_driver_resumes_without_rerunning_finished_trials(slow_trials, tmp_path,
                                                                   shared_data):
    out = tmp_path / "out"
    first = _cli("--trials-dir", str(slow_trials), "--preset", "slow",
                 "--only", "tabular-a,tabular-b", "--tabular-data",
                 str(shared_data / "diabetes" / "diabetes.arff"),
                 "--storage-path", str(out), "--name", "k")
    trials = out / "k" / "tune"
    # both families grow at once: wait for part A's end and part B's second checkpoint
    kill_when(first, tmp_path / "first.log",
               lambda: list(trials.glob("tabular-b_*/checkpoint_000002"))
               and _finished(trials, "tabular-a_*", [2, 4]))
    assert not (out / "k" / "summary.json").exists()
    part_a = next(trials.glob("tabular-a_*"))
    a_before = _epochs(part_a / "progress.csv")
    b_before = _epochs(next(trials.glob("tabular-b_*")) / "progress.csv")
    assert a_before == [2, 4] and 10 <= b_before[-1] < 90  # progress.csv may lag a checkpoint

    again = _cli("--trials-dir", str(slow_trials), "--resume", "--name", "k",
                 "--storage-path", str(out))
    done = subprocess.run(again, cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Resuming k (preset slow)" in done.stdout
    assert _epochs(part_a / "progress.csv") == a_before  # not run again
    b_after = _epochs(next(trials.glob("tabular-b_*")) / "progress.csv")
    # went on from a checkpoint: every epoch once, in order (a restart from 0 repeats 10, 20...)
    assert b_after[:len(b_before)] == b_before and b_after == sorted(set(b_after))
    assert b_after[-1] == 90
    summary = json.loads((out / "k" / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]
    for trial in summary["trials"]:
        assert Path(trial["checkpoint"]).is_dir() and trial["best_epoch"] in \
            (a_before if trial["family"] == "tabular-a" else b_after)


def test_a_pbt_experiment_whose_driver_was_killed_mid_exploit_resumes_to_the_end(
        slow_trials, tmp_path, shared_data):
    """PBT's decisions live in the trials' configs, which Tune saves; the scheduler object is
    rebuilt afresh on resume. Killed once an exploit has been decided (its donor's weights
    copied), the experiment still ends with every trial trained to its last epoch under its
    own name, and every kept epoch its best report."""
    import pandas as pd

    out = tmp_path / "out"
    first = _cli("--trials-dir", str(slow_trials), "--preset", "slow-pbt", "--only", "tabular-a",
                 "--tabular-data", str(shared_data / "diabetes" / "diabetes.arff"),
                 "--storage-path", str(out), "--name", "p")
    trials = out / "p" / "tune"
    kill_when(first, tmp_path / "first.log", lambda: list(trials.glob("*/pbt_donor/state.pt")))
    assert list(trials.glob("*/pbt_donor/state.pt")), "no exploit within 4 minutes"
    assert not (out / "p" / "summary.json").exists()
    rows_before = {d.name: len(pd.read_csv(d / "progress.csv")) for d in trials.glob("*_*")
                   if (d / "progress.csv").exists()}

    again = _cli("--trials-dir", str(slow_trials), "--resume", "--name", "p",
                 "--storage-path", str(out))
    done = subprocess.run(again, cwd=REPO, capture_output=True, text=True, timeout=400)
    (tmp_path / "again.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads((out / "p" / "summary.json").read_text())
    names = {t["trial"] for t in summary["trials"]}
    assert [t["status"] for t in summary["trials"]] == ["ok"] * 4 and len(names) == 4
    for trial in summary["trials"]:
        results = (Path(trial["trial_dir"]) / "result.json").read_text().splitlines()
        progress = pd.read_csv(Path(trial["trial_dir"]) / "progress.csv")
        assert len(results) == len(progress)  # Tune's own JSON logger lost lines (JsonResults)
        assert "pending_exploit" not in json.loads(results[-1])["config"]["trial"]  # carried out
        assert progress["epoch"].max() == 40
        # The resume starts from Tune's last saved state: reports made after it and before the
        # kill are trained again (their rows stay in progress.csv). Every report since the
        # resume is known to Tune, so the kept epoch is at least as good as each of them.
        kept = trial["metrics"]["select/score"]
        assert any(kept == pytest.approx(v) for v in progress["select/score"])
        since = progress["select/score"].iloc[rows_before.get(trial["trial"], 0):]
        assert since.empty or kept >= since.max() - 1e-9
        for exploit in trial.get("exploits", []):
            assert f"tabular-a_diabetes_{exploit['donor']:03d}" in names - {trial["trial"]}
        if trial.get("exploits"):
            assert trial["params"]["lr_g"] == trial["exploits"][-1]["params"]["lr_g"]
    assert any(t.get("exploits") for t in summary["trials"])


def _saved_latest_checkpoint(tune_dir: Path, trial: str) -> Path:
    """The latest checkpoint of `trial` as Tune's last saved experiment state names it."""
    import cloudpickle

    state = max(tune_dir.glob("experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    for trial_json, run_json in json.loads(state.read_text())["trial_data"]:
        if json.loads(trial_json)["relative_logdir"] == trial:
            pickled = json.loads(run_json)["checkpoint_manager"]["value"]
            latest = cloudpickle.loads(bytes.fromhex(pickled)).latest_checkpoint_result
            return Path(latest.checkpoint.path)
    raise AssertionError(f"{trial} is not in {state}")


def test_a_trial_whose_saved_latest_checkpoint_was_deleted_resumes_from_one_that_exists(
        slow_trials, tmp_path, shared_data):
    """Tune deletes a checkpoint that leaves the best K at once but saves its state only every
    K checkpoints; a driver killed in between leaves a saved state naming a deleted checkpoint
    (seen in 2 of 7 PBT kill-and-resume runs). Made certain here: that checkpoint is deleted."""
    out = tmp_path / "out"
    first = _cli("--trials-dir", str(slow_trials), "--preset", "slow", "--only", "tabular-b",
                 "--tabular-data", str(shared_data / "diabetes" / "diabetes.arff"),
                 "--storage-path", str(out), "--name", "d")
    trials = out / "d" / "tune"
    kill_when(first, tmp_path / "first.log",
               lambda: list(trials.glob("tabular-b_*/checkpoint_000003")))
    part_b = next(trials.glob("tabular-b_*"))
    named = _saved_latest_checkpoint(trials, part_b.name)
    # what retention does after the save and before a kill (it may have done so already)
    shutil.rmtree(named, ignore_errors=True)
    done = subprocess.run(_cli("--trials-dir", str(slow_trials), "--resume", "--name", "d",
                               "--storage-path", str(out)),
                          cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{named} is gone" in done.stdout + done.stderr
    assert _epochs(part_b / "progress.csv")[-1] == 90
    summary = json.loads((out / "d" / "summary.json").read_text())
    assert summary["trials"][0]["status"] == "ok"
    assert Path(summary["trials"][0]["checkpoint"]).is_dir()


def test_an_existing_name_needs_resume_and_resume_needs_an_experiment(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text("{}")
    done = subprocess.run(_cli("--preset", "tiny", "--storage-path", str(tmp_path),
                               "--name", "old"), cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "continue it with --resume" in done.stderr
    assert (tmp_path / "old" / "run.json").read_text() == "{}"
    done = subprocess.run(_cli("--resume", "--name", "nothing", "--storage-path", str(tmp_path)),
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no experiment to resume" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "nothing").exists()
