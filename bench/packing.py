"""Packing benchmark: how many small GANs one GPU should hold at once.

Grows the same population of `fruit-pairs` trials (one per class, a preset's models, a fixed
number of epochs) once per GPU share: 1, 0.5, 0.25 and 0.125 of a GPU per trial, so 1, 2, 4 and
8 trials run on the GPU together. Each row is the real command (`run_farm.py --only
fruit-pairs`) with a preset written into a scratch copy of trials/. Per share it reports:

* the trial phase's wall time, from the first trial's start to the last one's end as Tune's
  progress files record them, to the second (the judge, export and evaluator are not counted);
* throughput in trial-epochs per hour over that phase;
* the GPU's mean utilisation and peak memory over that phase (nvidia-smi, every half second).

The best share is the one with the highest throughput: that is the number for the family's
`resources.gpu` in trials/images.yaml. Without a GPU the rows are CPU shares instead
(`--cpus 1 2`: cores per trial), utilisation is the machine's CPU use, and the script checks
itself rather than answering the GPU question.

    .venv/bin/python bench/packing.py --out /tmp/packing.md                  # GPU: the sweep
    .venv/bin/python bench/packing.py --base laptop --classes 4 --epochs 20  # CPU: a check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import emit  # noqa: E402

SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
FAMILY = "fruit-pairs"
SAMPLE_S = 0.5


class Sampler:
    """Utilisation (percent) and memory (MiB) every half second on a thread: the GPU's through
    nvidia-smi when there is one, else the machine's CPU through psutil (memory 0)."""

    def __init__(self, gpu: bool):
        self.gpu, self.samples = gpu, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> tuple[float, float]:
        if not self.gpu:
            return psutil.cpu_percent(interval=None), 0.0
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
        utilisation, memory = (float(v) for v in out.split(","))
        return utilisation, memory

    def _run(self) -> None:
        psutil.cpu_percent(interval=None)  # the first call only starts the CPU counter
        while not self._stop.wait(SAMPLE_S):
            self.samples.append((time.time(), *self._read()))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def over(self, start: float, end: float) -> tuple[float, float]:
        """(mean utilisation, peak memory) of the samples taken in [start, end]."""
        inside = [(u, m) for t, u, m in self.samples if start <= t <= end]
        if not inside:
            return float("nan"), float("nan")
        return sum(u for u, _ in inside) / len(inside), max(m for _, m in inside)


def has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0


def class_names(data_dir: Path, dataset: str, count: int) -> list[str]:
    root = data_dir / dataset
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    if len(names) < count:
        raise SystemExit(f"{root}: {len(names)} class folders, --classes asks for {count}")
    return names[:count]


def write_preset(trials: Path, name: str, base: str, share: float, cpus: int, args,
                 classes: list[str]) -> None:
    """Only the packing differs between rows: the same trials, models, epochs and judge."""
    base_preset = yaml.safe_load((REPO / "trials" / "presets" / f"{base}.yaml").read_text())
    params = ((base_preset.get("families") or {}).get(FAMILY) or {}).get("params", {})
    family = {"epochs": args.epochs, "eval_every": args.eval_every, "params": params,
              "resources": {"cpu": cpus, "gpu": share}, "search": {"variant": ["report"]}}
    preset = {"description": f"bench/packing.py: {name}",
              "families": {FAMILY: family},
              # the judge scores every evaluation, so it keeps its architecture; one epoch of
              # training is enough for timing. The evaluator is not timed: the smallest.
              "data": {"images": {"classes": classes, "synthetic_per_class": 2,
                                  "judge": {"epochs": 1}}},
              "evaluator": {"arch": "tiny", "epochs": 1}}
    (trials / "presets" / f"{name}.yaml").write_text(yaml.safe_dump(preset))


def trial_phase(experiment: Path) -> tuple[float, float, int]:
    """(start, end, trial-epochs) of the trials, from Tune's progress files."""
    starts, ends, epochs = [], [], 0
    for progress in (experiment / "tune").glob("*/progress.csv"):
        frame = pd.read_csv(progress)
        first = frame.iloc[0]
        starts.append(float(first["timestamp"]) - float(first["time_this_iter_s"]))
        ends.append(float(frame["timestamp"].max()))
        epochs += int(frame["epoch"].max())
    if not starts:
        raise SystemExit(f"{experiment}: no trial reported anything")
    return min(starts), max(ends), epochs


def run_row(trials: Path, preset: str, storage: Path, gpu: bool, data_dir: Path) -> dict:
    cmd = [sys.executable, str(REPO / "run_farm.py"), "--trials-dir", str(trials), "--preset",
           preset, "--only", FAMILY, "--data-dir", str(data_dir), "--storage-path",
           str(storage), "--name", preset]
    print("$", " ".join(cmd), flush=True)
    log = storage / f"{preset}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with Sampler(gpu) as sampler, log.open("w") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode:
        tail = log.read_text().splitlines()[-15:]
        raise SystemExit("\n".join([*tail, f"packing: the run failed (exit {done.returncode})"]))
    start, end, epochs = trial_phase(storage / preset)
    seconds = max(end - start, 1.0)
    utilisation, memory = sampler.over(start, end)
    row = {"trial phase s": seconds, "trial-epochs": epochs,
           "trial-epochs / h": epochs / seconds * 3600, "utilisation %": utilisation}
    if gpu:
        row["peak memory MiB"] = memory
    return row


def _cell(value) -> str:
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.5, 0.25, 0.125],
                        help="GPU share per trial (1/share trials per GPU)")
    parser.add_argument("--cpus", type=int, nargs="+", default=[1, 2],
                        help="without a GPU: cores per trial, one row each")
    parser.add_argument("--cpus-per-trial", type=int, default=1, help="with a GPU")
    parser.add_argument("--base", default="full",
                        help="preset whose fruit-pairs models are timed (full: G2a / D34)")
    parser.add_argument("--classes", type=int, default=16, help="trials: one per class")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    gpu = has_gpu()
    started = time.time()
    classes = class_names(args.data_dir, "fids30", args.classes)
    rows = []
    layouts = ([(share, args.cpus_per_trial) for share in args.shares] if gpu
               else [(0.0, cpus) for cpus in args.cpus])
    with tempfile.TemporaryDirectory(prefix="bench-packing-") as tmp:
        trials = Path(shutil.copytree(REPO / "trials", Path(tmp) / "trials"))
        for index, (share, cpus) in enumerate(layouts):
            name = f"packing{index}"
            write_preset(trials, name, args.base, share, cpus, args, classes)
            at_once = round(1 / share) if gpu else max(1, (os.cpu_count() or 1) // cpus)
            row = {"GPU share" if gpu else "cores per trial": share if gpu else cpus,
                   "trials at once": min(at_once, len(classes))}
            row.update(run_row(trials, name, Path(tmp) / "out", gpu, args.data_dir))
            rows.append(row)
            print(json.dumps(row), flush=True)
    table = pd.DataFrame(rows)
    best = table.loc[table["trial-epochs / h"].idxmax()]
    device = (subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True).stdout.strip() if gpu
              else f"CPU only, {os.cpu_count()} cores")
    lines = [f"# packing benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", "",
             f"Device: {device}. {len(classes)} {FAMILY} trials (preset `{args.base}`'s models, "
             f"variant report), {args.epochs} epochs, an evaluation every {args.eval_every}; "
             f"wall time {time.time() - started:.0f} s. Trial phase: first trial start to last "
             "trial end (Tune's progress files); utilisation "
             f"{'of the GPU (nvidia-smi)' if gpu else 'of all CPU cores (psutil)'}, mean over "
             "that phase.", "",
             "| " + " | ".join(table.columns) + " |", "|" + "---:|" * len(table.columns)]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    lines += ["", f"Highest throughput: {table.columns[0]} {best.iloc[0]:g} "
              f"({best['trial-epochs / h']:.0f} trial-epochs / h)."]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
