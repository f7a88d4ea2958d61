"""How many generated images a class does the usefulness probe need to rank checkpoints?

The farm keeps each all-class trial's checkpoint with the best usefulness: a linear probe in the
judge's features, fitted on the trial's fixed-noise images (`eval_images` a class) and tested on
the val slice (farm/metrics/usefulness.py). With few images a class the probe's score is noisy
from one evaluation to the next, and a noisy score ranks checkpoints by chance. So this bench
draws every kept checkpoint of a finished run again, from the run's own noise (the trial's seed
plus the class: the first `eval_images` of each draw are the ones the run scored), scores it
with the probe on the first n images of each class for every n asked, and gives the Spearman
correlation of each n's scores with the checkpoints' test CAS, per trial, and their mean.

The test CAS comes from rows `bench/laptop_images.py --checkpoints-only` wrote (several files,
one per classifier seed: each checkpoint's CAS is their mean). Nothing here chooses anything:
the test split only grades the scores.

    .venv/bin/python bench/useful_images.py results/<name> --rows-from rows-seed0.json \
        [rows-seed1.json] [--images 16,64,128] [--data-dir DIR]

Writes bench/results/useful-images.json (`--json` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common import command_line, emit, git_commit, host_cpu
from image_epochs import prepared_dataset, reference_sets
from laptop_images import checkpoints, mean_cas, spearman_per_trial

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.family_params import params_from  # noqa: E402
from farm.families.image_common import generate, judge_for  # noqa: E402
from farm.families.kinds import kind_of  # noqa: E402
from farm.gan.checkpoint import load_state  # noqa: E402
from farm.metrics.usefulness import usefulness  # noqa: E402

RESULTS = REPO / "bench" / "results" / "useful-images.json"


def probe_scores(experiment: Path, trial: str, train, sizes: list[int]) -> list[dict]:
    """One row per kept checkpoint of an all-class trial: `useful@n` for every n in `sizes`,
    each from the first n images of one draw per class of max(sizes) (the run's noise)."""
    spec = json.loads((experiment / "tune" / trial / "params.json").read_text())["trial"]
    kind, params = kind_of(spec["kind"]), params_from(spec["kind"], spec["params"])
    view = kind.view(train, spec)
    judge = judge_for(view, torch.device("cpu"))
    rows = []
    for epoch, folder in checkpoints(experiment, {"trial": trial}):
        generator = kind.build(params, view, torch.device("cpu")).generator
        generator.load_state_dict(load_state(folder)["generator"])
        with torch.no_grad():
            features = {label: judge.features(generate(generator, max(sizes),
                                                       int(spec["seed"]) + label, label)).cpu()
                        for label in range(len(train.classes))}
        row = {"trial": trial, "epoch": epoch}
        for n in sizes:
            scored = usefulness({k: v[:n] for k, v in features.items()}, train.real_features,
                                train.val_features, train.val_labels, train.classes)
            row[f"useful@{n}"] = scored["useful"]
        rows.append(row)
        print(f"  {trial} epoch {epoch}: " + ", ".join(
            f"{n}: {row[f'useful@{n}']:.3f}" for n in sizes), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--rows-from", type=Path, nargs="+", required=True, metavar="ROWS_JSON",
                        help="bench/laptop_images.py --checkpoints-only rows (one file per "
                             "classifier seed)")
    parser.add_argument("--images", default="16,64,128",
                        help="comma-separated images a class for the probe")
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--data-dir", help="where the dataset is, if not where the run found it")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sizes = sorted({int(n) for n in args.images.split(",")})
    cas = mean_cas([pd.DataFrame(json.loads(f.read_text())) for f in args.rows_from])
    started = time.perf_counter()
    prepared, _ = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    train, _ = reference_sets(args.experiment, None, args.dataset, args.data_dir, prepared)
    rows = []
    for trial in sorted(cas["trial"].unique()):
        rows += probe_scores(args.experiment, trial, train, sizes)
    table = pd.DataFrame(rows).merge(cas[["trial", "epoch", "useful", "kid", "cas"]],
                                     on=["trial", "epoch"])
    columns = {"logged usefulness": ("useful", 1.0), "logged KID (sign flipped)": ("kid", -1.0),
               **{f"probe on {n} a class": (f"useful@{n}", 1.0) for n in sizes}}
    per_trial = {name: spearman_per_trial(table, column, sign) for name, (column, sign) in columns.items()}
    result = {"commit": git_commit(), "command": command_line(), "device": host_cpu(),
              "experiment": args.experiment.name, "classifier_seeds": len(args.rows_from),
              "checkpoints": len(table), "seconds": round(time.perf_counter() - started),
              "spearman": {name: float(np.mean(list(v.values()))) for name, v in per_trial.items()},
              "spearman_per_trial": per_trial, "rows": table.to_dict("records")}
    args.json.parent.mkdir(exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1, default=float) + "\n")
    lines = [f"# Probe size against checkpoint CAS: {args.experiment.name}", "",
             f"- commit {result['commit']}; {result['device']}; {result['seconds']} s",
             f"- {len(table)} checkpoints; test CAS the mean of {len(args.rows_from)} "
             "classifier seed(s)", "",
             "| score | mean Spearman | per trial |", "|---|---|---|"]
    for name, values in per_trial.items():
        lines.append(f"| {name} | {result['spearman'][name]:+.3f} | "
                     + " / ".join(f"{v:+.2f}" for v in values.values()) + " |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
