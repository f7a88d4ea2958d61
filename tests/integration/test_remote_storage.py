"""`--storage-path s3://bucket/prefix`: the farm against a real S3 protocol server (moto's, on
localhost). Tune's trials and the evaluator's runs go straight to the bucket; the driver's files
go up from its local copy; `--report-only` and `--resume` work from a machine that has no copy."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import BUCKET, kill_when

REPO = Path(__file__).resolve().parents[2]


def _bucket_files(uri: str, name: str) -> dict[str, int]:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(uri.replace("?", f"/{name}?"))
    infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True))
    return {i.path[len(root) + 1:]: i.size for i in infos if i.type == pyarrow.fs.FileType.File}


def _read(uri: str, name: str, relative: str) -> bytes:
    import pyarrow.fs

    fs, root = pyarrow.fs.FileSystem.from_uri(uri.replace("?", f"/{name}?"))
    with fs.open_input_stream(f"{root}/{relative}") as f:
        return f.read()


def _farm(env: dict, mirror: Path, *args: str, timeout: int = 280):
    env = {**env, "FARM_MIRROR": str(mirror)}
    return subprocess.run([sys.executable, str(REPO / "run_farm.py"), "--local", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_a_farm_on_s3_writes_everything_to_the_bucket_and_resumes_from_another_machine(
        s3, tmp_path, shared_data):
    uri, env = s3
    done = _farm(env, tmp_path / "driver-a", "--preset", "tiny", "--only",
                 "tabular-a,fruit-pairs", "--data-dir", str(shared_data),
                 "--storage-path", uri, "--name", "e")
    assert done.returncode == 0, done.stderr[-3000:]
    files = _bucket_files(uri, "e")
    summary = json.loads(_read(uri, "e", "summary.json"))
    assert summary["storage"] == uri.replace("?", "/e?")
    assert [t["status"] for t in summary["trials"]] == ["ok"] * 4  # 2 tables, 2 fruit classes
    for trial in summary["trials"]:  # each best checkpoint is in the bucket, where Tune put it
        kept = f"tune/{trial['trial']}/{Path(trial['checkpoint']).name}/state.pt"
        assert files.get(kept, 0) > 0, sorted(files)
        if trial["family"] == "tabular-a":
            assert files[f"synthetic/{trial['dataset']}/{trial['trial']}.csv"] > 0
        else:
            assert files[f"synthetic/fids30/trials/{trial['trial']}/manifest.json"] > 0
    for must in ("run.json", "report.html", "report.md", "splits/fids30.json",
                 "splits/diabetes.json", "judge/fids30.pt", "tune/tuner.pkl"):
        assert files.get(must, 0) > 0, (must, sorted(files))
    pools = [f for f in files if f.startswith("synthetic/fids30/pools/")
             and f.endswith("/manifest.json")]
    assert pools, sorted(files)
    assert any(f.startswith("evaluator/evaluator-fids30/") for f in files)  # Ray Train's run
    assert any(f.startswith("evaluator/tensorboard-fids30/") for f in files)
    # the size it states is the bucket's (the summary and report are written after counting)
    counted = sum(size for f, size in files.items()
                  if f not in ("summary.json", "report.html", "report.md"))
    assert summary["disk_bytes"] == pytest.approx(counted, rel=0.01)
    assert f"Report:         {uri.replace('?', '/e/report.html?')}" in done.stdout
    report = _read(uri, "e", "report.md").decode()
    assert f"--report-only --name e --storage-path {shlex.quote(uri)}" in report  # the bucket
    assert not (REPO / "results" / "e").exists()

    # Another machine (an empty local copy) rewrites the report from the bucket alone.
    report_before = _read(uri, "e", "report.html")
    again = _farm(env, tmp_path / "driver-b", "--report-only", "--name", "e",
                  "--storage-path", uri, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "driver-b").rglob("report.html")
    assert len(_read(uri, "e", "report.html")) == pytest.approx(len(report_before), rel=0.05)

    # ... and resumes it: Tune's state comes back from the bucket, no trial trains again.
    resumed = _farm(env, tmp_path / "driver-c", "--resume", "--name", "e", "--storage-path", uri)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming the trials in s3://" in resumed.stdout
    after = json.loads(_read(uri, "e", "summary.json"))
    assert [(t["trial"], t["best_epoch"], t["metrics"]) for t in after["trials"]] == \
        [(t["trial"], t["best_epoch"], t["metrics"]) for t in summary["trials"]]
    assert after["datasets"]["fids30"]["judge"]["test_accuracy"] == \
        summary["datasets"]["fids30"]["judge"]["test_accuracy"]  # the judge was not retrained


def test_a_driver_killed_mid_run_resumes_on_another_machine_from_the_bucket(
        s3, slow_trials, tmp_path, shared_data):
    """The spot-instance story: the head (and its local copy) is gone; a new machine resumes
    from the bucket alone. Finished trials are read back, the unfinished one goes on."""
    import pyarrow.fs

    uri, env = s3
    first = [sys.executable, str(REPO / "run_farm.py"), "--local", "--trials-dir", str(slow_trials),
             "--preset", "slow", "--only", "tabular-a,tabular-b", "--tabular-data",
             str(shared_data / "diabetes" / "diabetes.arff"), "--storage-path", uri,
             "--name", "k"]
    fs, root = pyarrow.fs.FileSystem.from_uri(uri.replace("?", "/k?"))

    def progress(pattern: str) -> list[int]:
        """Epochs in a trial's progress.csv in the bucket."""
        for info in fs.get_file_info(pyarrow.fs.FileSelector(f"{root}/tune", recursive=True,
                                                             allow_not_found=True)):
            if re.fullmatch(pattern, info.path[len(root) + 6:]):
                with fs.open_input_stream(info.path) as f:
                    return [int(r["epoch"]) for r in csv.DictReader(io.StringIO(
                        f.read().decode()))]
        return []

    kill_when(first, tmp_path / "first.log",
              lambda: progress(r"tabular-a_[^/]*/progress\.csv") == [2, 4]
              and len(progress(r"tabular-b_[^/]*/progress\.csv")) >= 2,
              env={**env, "FARM_MIRROR": str(tmp_path / "a")})
    a_before = progress(r"tabular-a_[^/]*/progress\.csv")
    assert a_before == [2, 4] and not _bucket_files(uri, "k").get("summary.json")

    resumed = _farm(env, tmp_path / "b", "--trials-dir", str(slow_trials), "--resume",
                    "--name", "k", "--storage-path", uri, timeout=400)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert progress(r"tabular-a_[^/]*/progress\.csv") == a_before  # not trained again
    assert progress(r"tabular-b_[^/]*/progress\.csv")[-1] == 90
    summary = json.loads(_read(uri, "k", "summary.json"))
    assert [t["status"] for t in summary["trials"]] == ["ok", "ok"]


def test_bad_remote_storage_is_one_clear_line_and_writes_nothing(s3, tmp_path):
    uri, env = s3
    secret = uri.replace("s3://", "s3://key:secret@")
    done = _farm(env, tmp_path / "m", "--preset", "tiny", "--storage-path", secret,
                 "--name", "x", timeout=120)
    assert done.returncode == 2 and "credentials in the URI" in done.stderr
    assert "secret" not in done.stderr and "Traceback" not in done.stderr
    missing = uri.replace(BUCKET, "no-such-bucket")
    for args, says in ((["--preset", "tiny"], "cannot write there"),  # before any data work
                       (["--resume"], "no experiment to resume")):
        done = _farm(env, tmp_path / "m", *args, "--name", "x", "--storage-path", missing,
                     timeout=120)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert len(errors) == 1 and says in errors[0] and "no-such-bucket" in errors[0], errors
        assert not [p for p in (tmp_path / "m").rglob("*") if p.is_file()]
