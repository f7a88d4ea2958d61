"""Fault benchmark: kill a trial worker at a random moment, and kill the driver once and resume.

Every run must end with all its trials complete and the same summary as an undisturbed run:
the same trials, each with a best checkpoint that loads (`weights_only=True`). Prints one row
per run and a verdict; asserts nothing about timings.

    .venv/bin/python bench/faults.py --data-dir ../shared/data                 # smoke, 5 kills
    .venv/bin/python bench/faults.py --data-dir ../shared/data --preset tiny --runs 2   # a check

Worker kills: SIGKILL to one live Tune trial process (`ray::ImplicitFunc`), chosen at random,
at a random moment while trials run; Tune retries the trial from its latest checkpoint
(FailureConfig). Driver kill: SIGKILL to the driver's whole process group, then
`run_farm.py --resume --name NAME`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def _farm(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(REPO / "run_farm.py"), *args], cwd=REPO,
                            start_new_session=True, stdout=log.open("w"),
                            stderr=subprocess.STDOUT)


def _trial_pids(session: int) -> list[int]:
    """Live Tune trial processes started by the driver whose session id is `session`."""
    pids = []
    for line in subprocess.run(["ps", "-eo", "pid=,sid=,args="], capture_output=True,
                               text=True).stdout.splitlines():
        pid, sid, args = line.strip().split(None, 2) if len(line.split()) > 2 else (0, 0, "")
        if int(sid) == session and "ImplicitFunc" in args and "<defunct>" not in args:
            pids.append(int(pid))
    return pids


def check(storage: Path, name: str, reference: dict | None) -> dict:
    """What a run left: trial count, statuses, best checkpoints that load, vs the reference."""
    path = storage / name / "summary.json"
    if not path.exists():
        return {"complete": False, "why": "no summary.json"}
    summary = json.loads(path.read_text())
    ok = [t for t in summary["trials"] if t["status"] == "ok"]
    loads = 0
    for t in ok:
        torch.load(Path(t["checkpoint"]) / "state.pt", map_location="cpu", weights_only=True)
        loads += 1
    out = {"complete": len(ok) == len(summary["trials"]), "trials": len(summary["trials"]),
           "ok": len(ok), "checkpoints_load": loads, "seconds": summary.get("seconds")}
    if reference is not None:
        same = sorted(t["trial"] for t in summary["trials"]) == \
            sorted(t["trial"] for t in reference["trials"])
        out["same_trials_as_undisturbed"] = same
    return out


def trial_phase_seconds(experiment: Path) -> float:
    """From the first trial folder's creation to the last progress written: when trials run."""
    trials = [d for d in (experiment / "tune").glob("*_*") if d.is_dir()]
    start = min(d.stat().st_ctime for d in trials)
    end = max((d / "progress.csv").stat().st_mtime for d in trials if (d / "progress.csv").exists())
    return max(1.0, end - start)


def _kill_a_trial(driver: subprocess.Popen, delay: float, deadline: float) -> int | None:
    """Once the first trial runs, wait `delay` seconds, then SIGKILL a random live trial
    process (the next one to start if none runs at that moment)."""
    while not _trial_pids(driver.pid) and driver.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(delay)
    while driver.poll() is None and time.time() < deadline:
        victims = _trial_pids(driver.pid)
        if victims:
            victim = random.choice(victims)
            os.kill(victim, signal.SIGKILL)
            return victim
        time.sleep(0.2)
    return None


def _failures(experiment: Path) -> int:
    """Trials that failed at least once (Tune leaves an error.txt) and were retried."""
    return len(list((experiment / "tune").glob("*_*/error.txt")))


def _wait(process: subprocess.Popen, timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return -9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="smoke")
    p.add_argument("--runs", type=int, default=5, help="runs with one worker killed each")
    p.add_argument("--data-dir", default=os.environ.get("FARM_DATA_DIR"))
    p.add_argument("--seed", type=int, default=0, help="for the random moments and victims")
    p.add_argument("--timeout", type=float, default=1800, help="per run, seconds")
    args = p.parse_args()
    rng = random.Random(args.seed)
    storage = Path(tempfile.mkdtemp(prefix="farm-faults-"))
    common = ["--preset", args.preset, "--storage-path", str(storage)]
    if args.data_dir:
        common += ["--data-dir", args.data_dir]
    rows = []
    keys = ["run", "kill_after_s", "killed_pid", "failures_retried", "exit", "complete", "trials",
            "ok", "checkpoints_load", "same_trials_as_undisturbed", "seconds"]
    print(f"Fault benchmark, preset {args.preset}, logs and experiments in {storage}\n",
          flush=True)
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys), flush=True)

    def add(row: dict) -> None:
        rows.append(row)
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |", flush=True)

    started = time.time()
    code = _wait(_farm([*common, "--name", "undisturbed"], storage / "undisturbed.log"),
                 args.timeout)
    undisturbed_seconds = time.time() - started
    if code != 0:
        print(f"the undisturbed run failed (exit {code}); see {storage / 'undisturbed.log'}")
        return 1
    reference = json.loads((storage / "undisturbed" / "summary.json").read_text())
    phase = trial_phase_seconds(storage / "undisturbed")
    add({"run": "undisturbed", "exit": code, **check(storage, "undisturbed", None)})

    random.seed(args.seed)
    for run in range(args.runs):
        name = f"worker-kill-{run}"
        driver = _farm([*common, "--name", name], storage / f"{name}.log")
        delay = rng.uniform(0.05, 0.9) * phase
        killed = _kill_a_trial(driver, delay, time.time() + args.timeout)
        code = _wait(driver, args.timeout)
        add({"run": name, "kill_after_s": round(delay, 1), "killed_pid": killed,
                     "failures_retried": _failures(storage / name), "exit": code,
                     **check(storage, name, reference)})

    name = "driver-kill"
    driver = _farm([*common, "--name", name], storage / f"{name}.log")
    moment = rng.uniform(0.2, 0.6) * undisturbed_seconds  # any phase: data, trials, evaluator
    time.sleep(moment)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(3)
    resumed = _farm(["--resume", "--name", name, "--storage-path", str(storage)],
                    storage / f"{name}-resume.log")
    code = _wait(resumed, args.timeout)
    add({"run": "driver-kill + --resume", "kill_after_s": round(moment, 1), "exit": code,
                 **check(storage, name, reference)})

    good = all(r["exit"] == 0 and r.get("complete") and r.get("same_trials_as_undisturbed", True)
               for r in rows)
    missed = [r["run"] for r in rows if r["run"].startswith("worker") and not r["killed_pid"]]
    if missed:
        print(f"no trial was running to kill in: {', '.join(missed)}")
    print(f"\n{'every run complete, same trials as undisturbed' if good else 'SOME RUN FAILED'}")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
