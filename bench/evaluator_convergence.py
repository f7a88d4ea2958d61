"""Has the evaluator's classifier converged? The ceiling at its schedule and at twice it.

A figure from a classifier still learning would measure its schedule, not the data. So the
ceiling (real train split -> held-out test split, the evaluator's own code and settings) is
trained at the experiment's `epochs` and at `--factor` times them, with the same classifier
seeds, and the two compared: converged means the longer schedule moves the mean by less than
0.01 (about two of FIDS30's 193 test images).

    .venv/bin/python bench/evaluator_convergence.py results/<name> [--factor 2] [--seeds 3]

`--short-from-run` takes the base schedule's ceilings from the run's own summary instead of
training them again (the farm's evaluator trains them with this code and these settings: on
the same thread count, laptop-7's were reproduced to the last digit); only the longer schedule
is trained. `--long-from FILE` reuses an earlier result's longer-schedule seeds, and
`--short-from FILE` takes the base schedule's from an earlier result's longer schedule, so that
`--passes 80 --short-from <40 vs 80> --long-from <40 vs 160>` compares 80 with 160 passes.

Writes bench/results/evaluator-convergence.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import emit, git_commit
from image_epochs import prepared_dataset, real_and_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import EvaluatorConfig, evaluator_config  # noqa: E402
from farm.evaluation.evaluator import Task, fit_and_test, seed_configs  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402
from farm.models.classifier import scores  # noqa: E402

RESULTS = REPO / "bench" / "results" / "evaluator-convergence.json"


def run_ceilings(summary: dict, dataset: str) -> dict[int, float]:
    """{classifier seed: ceiling accuracy} the run's evaluator measured. The bench's shorter
    schedule is the run's own evaluator config (run.json), so these are its figures."""
    ceiling = summary["evaluator"]["datasets"][dataset]["ceiling"]
    return dict(zip(ceiling["seeds"], ceiling["accuracies"]))


def earlier_long(path: Path | None, base, factor: int) -> dict[int, float]:
    """{classifier seed: accuracy} of an earlier result's longer schedule, if it was this one."""
    if path is None:
        return {}
    earlier = json.loads(path.read_text())
    if earlier["longer_epochs"] != base.epochs * factor or earlier["arch"] != base.arch:
        raise SystemExit(f"{path}: {earlier['arch']} at {earlier['longer_epochs']} "
                         f"passes, not {base.arch} at {base.epochs * factor}")
    seeds = earlier["long"].get("seeds") or list(range(base.seed, base.seed
                                                       + len(earlier["long"]["accuracies"])))
    return dict(zip(seeds, earlier["long"]["accuracies"]))


def accuracies_at(train: Task, test: Task, classes: int, config: EvaluatorConfig,
                  known: dict[int, float], label: str = "") -> dict:
    """{accuracies, mean, seeds, seconds, reused_seeds}: a classifier per seed of `config`,
    trained on `train` at its `epochs` and tested on `test`; a seed in `known` (seed: accuracy)
    is taken from there and not trained again."""
    accuracies, started = [], time.perf_counter()
    for config_seed in seed_configs(config):
        if config_seed.seed in known:
            accuracies.append(known[config_seed.seed])
            continue
        out = fit_and_test(train, test, classes, config_seed, torch.device("cpu"),
                           say=lambda _line: None)
        accuracies.append(scores(out["matrix"], range(classes))["accuracy"])
        print(f"{label}{config.epochs} passes, seed {config_seed.seed}: {accuracies[-1]:.3f} "
              f"({time.perf_counter() - started:.0f} s so far)", flush=True)
    return {"accuracies": accuracies, "mean": float(np.mean(accuracies)),
            "seeds": [c.seed for c in seed_configs(config)],
            "seconds": round(time.perf_counter() - started, 1), "reused_seeds": sorted(known)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--factor", type=int, default=2)
    parser.add_argument("--seeds", type=int, help="classifier seeds (default: the run's)")
    short_from = parser.add_mutually_exclusive_group()
    short_from.add_argument("--short-from-run", action="store_true",
                            help="the base schedule's ceilings are the run's own (summary.json)")
    parser.add_argument("--long-from", type=Path, metavar="JSON",
                        help="an earlier result of this bench: its longer-schedule seeds are "
                             "kept and not trained again")
    short_from.add_argument("--short-from", type=Path, metavar="JSON",
                            help="an earlier result of this bench whose longer schedule is this "
                                 "run's base: its seeds are kept and not trained again")
    parser.add_argument("--passes", type=int,
                        help="the base schedule (default: the run's evaluator's epochs)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    summary = json.loads((args.experiment / "summary.json").read_text())
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    base = evaluator_config(config.get("evaluator"))
    if args.seeds:
        base = dataclasses.replace(base, seeds=args.seeds)
    if args.passes:
        base = dataclasses.replace(base, epochs=args.passes)
    if args.short_from_run and args.passes:
        raise SystemExit("--short-from-run takes the run's own schedule; with --passes use "
                         "--short-from")
    real, held_out = real_and_test(prepared)
    train, test = real.labels, held_out.labels
    classes = len(prepared.images.classes)
    known = {base.epochs: run_ceilings(summary, args.dataset) if args.short_from_run
             else earlier_long(args.short_from, base, 1),
             base.epochs * args.factor: earlier_long(args.long_from, base, args.factor)}
    figures = {epochs: accuracies_at(real, held_out, classes,
                                     dataclasses.replace(base, epochs=epochs), known[epochs])
               for epochs in (base.epochs, base.epochs * args.factor)}
    short, long = figures[base.epochs], figures[base.epochs * args.factor]
    moved = paired_gain(long["accuracies"], short["accuracies"])
    result = {"commit": git_commit(),
              "experiment": summary["name"], "arch": base.arch, "test_images": int(len(test)),
              "train_images": int(len(train)), "epochs": base.epochs,
              "longer_epochs": base.epochs * args.factor, "short": short, "long": long,
              "moved": moved, "converged": abs(moved["mean"]) < 0.01}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    ci = moved["ci"]
    emit([f"# Evaluator convergence: {summary['name']} ({args.dataset}), {base.arch}", "",
          f"- {len(train)} real train images, {len(test)} test images (one is "
          f"{1 / len(test):.4f})",
          f"- ceiling at {base.epochs} passes: {short['mean']:.3f} "
          f"({' / '.join(f'{a:.3f}' for a in short['accuracies'])}), {short['seconds']} s",
          f"- ceiling at {base.epochs * args.factor} passes: {long['mean']:.3f} "
          f"({' / '.join(f'{a:.3f}' for a in long['accuracies'])}), {long['seconds']} s",
          f"- the longer schedule moved it by {moved['mean']:+.3f}"
          + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
          + f": {'converged' if result['converged'] else 'NOT converged'}"], args.out)


if __name__ == "__main__":
    main()
