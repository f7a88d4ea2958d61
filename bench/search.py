"""Search benchmark: one population of sampled tabular-a settings grown three ways, each trial to
its last epoch, with ASHA stopping the worst, and with PBT, on the same draws and data split.

For every split seed and mode it runs the real command (`run_farm.py --only tabular-a` on one
table) with a preset written into a scratch copy of trials/, then reads the experiment's
summary.json: the chosen trial's selection score (fit and validation rows: what the farm ranks
by), its TSTR AUC (a forest trained on its synthetic rows, tested on the held-out real rows,
which no trial or selection saw), the trial-epochs trained (what ASHA saves), the exploits PBT
made, and the wall time. Prints a markdown table (mean ± std over seeds) per mode.

    .venv/bin/python bench/search.py --seeds 0 1 --samples 8 --epochs 400 --out /tmp/search.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import emit  # noqa: E402

SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
RATES = {"loguniform": [1.0e-5, 1.0e-3]}


def modes(epochs: int) -> dict[str, dict]:
    """Each mode's `scheduler:` section; the grace period is a quarter of the run (GAN warm-up)."""
    grace = max(20, epochs // 4 // 20 * 20)
    return {
        "every epoch": {},
        "asha": {"kind": "asha", "grace_period": grace, "reduction_factor": 3, "smoothing": 3},
        "pbt": {"kind": "pbt", "grace_period": grace, "quantile_fraction": 0.25, "smoothing": 3,
                "perturbation_interval": max(20, grace // 2 // 20 * 20),  # whole evaluations
                "mutations": {"lr_g": RATES, "lr_d": RATES}},
    }


def write_preset(trials: Path, name: str, scheduler: dict, samples: int, epochs: int,
                 dataset: str) -> None:
    family = {"datasets": [dataset], "epochs": epochs, "eval_every": 20, "samples": samples,
              "search": {"variant": ["stable"], "lr_g": RATES, "lr_d": RATES}}
    if scheduler:
        family["scheduler"] = scheduler
    preset = {"description": f"bench/search.py: {name}", "families": {"tabular-a": family}}
    (trials / "presets" / f"{name}.yaml").write_text(yaml.safe_dump(preset))


def run_mode(trials: Path, preset: str, seed: int, storage: Path) -> dict:
    name = f"{preset}-{seed}"
    cmd = [sys.executable, str(REPO / "run_farm.py"), "--trials-dir", str(trials), "--preset",
           preset, "--only", "tabular-a", "--seed", str(seed), "--data-dir", str(SHARED_DATA),
           "--storage-path", str(storage), "--name", name]
    print("$", " ".join(cmd), flush=True)
    started = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - started
    summary = json.loads((storage / name / "summary.json").read_text())
    chosen = next(t for t in summary["trials"] if t.get("chosen"))
    return {"select/score": chosen["metrics"]["select/score"],
            "TSTR AUC": chosen["tstr"]["auc"],
            "trial-epochs": sum(t["last_epoch"] or 0 for t in summary["trials"]),
            "exploits": sum(len(t.get("exploits", [])) for t in summary["trials"]),
            "wall s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--samples", type=int, default=8, help="population size")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--dataset", default="diabetes")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.time()
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        trials = Path(shutil.copytree(REPO / "trials", Path(tmp) / "trials"))
        for index, (mode, scheduler) in enumerate(modes(args.epochs).items()):
            write_preset(trials, f"search{index}", scheduler, args.samples, args.epochs,
                         args.dataset)
            for seed in args.seeds:
                rows.setdefault(mode, []).append(
                    run_mode(trials, f"search{index}", seed, Path(tmp) / "out"))
    columns = ["select/score", "TSTR AUC", "trial-epochs", "exploits", "wall s"]
    lines = [f"# search benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
             f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", "",
             f"{os.cpu_count()} cores. tabular-a `stable` on {args.dataset}, {args.samples} "
             f"sampled (lr_g, lr_d) per run, {args.epochs} epochs, split seeds {args.seeds}; "
             f"wall time {time.time() - started:.0f} s. The chosen trial is the farm's (best "
             "select/score); its TSTR AUC is on the held-out test rows.", "",
             "| mode | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    for mode, runs in rows.items():
        cells = []
        for column in columns:
            values = np.array([r[column] for r in runs], dtype=float)
            digits = 3 if column in ("select/score", "TSTR AUC") else 0
            cells.append(f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0:.{digits}f}")
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
