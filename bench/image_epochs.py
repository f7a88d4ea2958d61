"""Chosen epoch vs last epoch, per class, for the image families of a finished experiment.

The farm keeps each trial's best epoch by KID in the judge's space; this reads every trial's
Tune progress (all evaluations, not just the kept checkpoints) and prints, per class, KID and
judge accuracy at the chosen epoch beside the same at the last epoch, and whether the choice was
ever worse than simply training to the end.

    .venv/bin/python bench/image_epochs.py results/<name> [--out file.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from common import emit


def _chosen_and_last(experiment: Path, trial: dict):
    progress = pd.read_csv(experiment / "tune" / trial["trial"] / "progress.csv")
    return progress[progress["epoch"] == trial["best_epoch"]].iloc[-1], progress.iloc[-1]


def _row(family, name, trial, chosen, last, kid_key, accuracy_key) -> dict:
    return {"family": family, "class": name, "trial": trial["trial"],
            "chosen epoch": int(chosen["epoch"]), "last epoch": int(last["epoch"]),
            "KID chosen": chosen[kid_key], "KID last": last[kid_key],
            "judge acc chosen": chosen[accuracy_key], "judge acc last": last[accuracy_key]}


def rows(experiment: Path, summary: dict, classes: list[str]) -> list[dict]:
    """One row per per-class trial, and one per class for every all-class trial."""
    out = []
    for trial in summary["trials"]:
        if trial["status"] != "ok" or "synthetic_dir" not in trial:
            continue  # tables, failed trials
        chosen, last = _chosen_and_last(experiment, trial)
        if trial["class"]:  # a per-class family (fruit-pairs)
            out.append(_row(trial["family"], trial["class"], trial, chosen, last, "kid",
                            "judge_accuracy"))
        else:  # one model for all classes (spiked, conditional)
            out += [_row(f"{trial['family']} {trial['setting']}", name, trial, chosen, last,
                         f"kid/{name}", f"judge_accuracy/{name}") for name in classes]
    return out


def markdown(table: pd.DataFrame) -> str:
    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    summary = json.loads((args.experiment / "summary.json").read_text())
    image_sets = {n: d for n, d in summary["datasets"].items() if d["kind"] == "image"}
    classes = [c for d in image_sets.values() for c in d["classes"]]
    table = pd.DataFrame(rows(args.experiment, summary, classes))
    if table.empty:
        raise SystemExit(f"{args.experiment}: no finished image trials")
    per_class = table[table["family"] == "fruit-pairs"]
    worse = per_class[per_class["KID chosen"] > per_class["KID last"] + 1e-12]
    lines = [f"# Chosen vs last epoch: {summary['name']} (preset {summary['preset']})", ""]
    for name, info in image_sets.items():
        lines.append(f"- {name}: judge accuracy on held-out real images "
                     f"{info['judge']['test_accuracy']:.3f} (chance {info['judge']['chance']:.3f})")
    lines += ["", markdown(table), "",
              f"fruit-pairs classes where the chosen epoch's KID is worse than the last "
              f"epoch's: {len(worse)} of {len(per_class)}",
              f"mean judge accuracy at the chosen epoch (fruit-pairs): "
              f"{per_class['judge acc chosen'].mean():.3f}; at the last epoch: "
              f"{per_class['judge acc last'].mean():.3f}"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
