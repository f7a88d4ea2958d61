"""Which classifier recipe converges within the evaluator's schedule? Chosen on the val slice.

The evaluator's figures are only about the data if its classifiers have converged (issue 18:
doubling the schedule should move the ceiling by less than 0.01). A recipe (learning rate,
batch size, ...) is chosen here without the test split: each recipe's classifier trains on the
fit images of a finished run (the real train split less its val slice) at `--epochs` passes and
at `--factor` times them, with the same classifier seeds, and is tested on the val slice. The
recipe that has converged (and, among those, scores highest) is the one to confirm on the test
split with bench/evaluator_convergence.py.

    .venv/bin/python bench/evaluator_recipe.py results/<name> --seeds 3 \
        --recipe now: --recipe lr3:lr=0.003 --recipe b32:batch_size=32

A recipe is `name:key=value,key=value` over `evaluator:` keys (trials/evaluator.yaml); `now:`
is the run's own evaluator. Writes bench/results/evaluator-recipe.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import yaml

from common import emit, git_commit
from evaluator_convergence import accuracies_at
from image_epochs import prepared_dataset, split_task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluator import REAL, Task  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402

RESULTS = REPO / "bench" / "results" / "evaluator-recipe.json"


def parse_recipe(text: str, base: dict) -> tuple[str, dict]:
    """'name:key=value,...' -> (name, the run's evaluator settings with those keys replaced);
    each value is read as YAML reads it (numbers, booleans, strings)."""
    name, _, body = text.partition(":")
    settings = dict(base)
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        settings[key.strip()] = yaml.safe_load(value)
    return name, settings


def fit_and_val(prepared) -> tuple[Task, Task]:
    """The real fit images (what the GANs and the judge trained on) and the val slice."""
    if not len(prepared.split.val):
        raise SystemExit("this run kept no val slice (data.images.val_fraction is 0)")
    return split_task(prepared, "fit", REAL), split_task(prepared, "val", "val")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--recipe", action="append", required=True)
    parser.add_argument("--epochs", type=int, help="passes (default: the run's evaluator's)")
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    run_settings = dict(config.get("evaluator") or {})
    fit, val = fit_and_val(prepared)
    classes = len(prepared.images.classes)
    rows, lines = [], []
    for text in args.recipe:
        name, settings = parse_recipe(text, run_settings)
        base = dataclasses.replace(evaluator_config(settings), seeds=args.seeds)
        epochs = args.epochs or base.epochs
        figures = {passes: accuracies_at(fit, val, classes,
                                         dataclasses.replace(base, epochs=passes), {},
                                         f"{name} ")
                   for passes in (epochs, epochs * args.factor)}
        short, long = figures[epochs], figures[epochs * args.factor]
        moved = paired_gain(long["accuracies"], short["accuracies"])
        rows.append({"name": name, "settings": settings, "epochs": epochs,
                     "longer_epochs": epochs * args.factor, "short": short, "long": long,
                     "moved": moved})
        ci = moved["ci"]
        changed = text.partition(":")[2] or "the run's own"
        lines.append(f"- {name} ({changed}): val "
                     f"{short['mean']:.3f} at {epochs} passes ({short['seconds']} s), "
                     f"{long['mean']:.3f} at {epochs * args.factor}; moved "
                     f"{moved['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""))
    result = {"commit": git_commit(), "experiment": json.loads(
        (args.experiment / "summary.json").read_text())["name"],
        "fit_images": int(len(fit.labels)), "val_images": int(len(val.labels)),
        "seeds": args.seeds, "recipes": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    emit([f"# Evaluator recipes on the val slice: {result['experiment']} ({args.dataset})", "",
          f"- {len(fit.labels)} fit images, {len(val.labels)} val images (one is "
          f"{1 / len(val.labels):.4f}), {args.seeds} classifier seeds", *lines], args.out)


if __name__ == "__main__":
    main()
