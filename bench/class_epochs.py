"""Does a conditional trial teach more when each class comes from its own best epoch?

A conditional trial keeps one epoch for all its classes, chosen by its mean val usefulness, yet
its per-class usefulness (`useful/<class>`: the same probe, on that class's val images) peaks at
different epochs for different classes (laptop-13's seed 0: grapefruits 0.001 at epoch 10 and
0.993 at 90; apples 0.262 at 20 and under 0.02 after 40). This bench builds one of a run's pools
(default `all-blend`) twice from the members the farm chose:

* `kept`: every member drawn at its kept checkpoint, as the farm builds the pool;
* `per-class`: each class of a conditional member drawn from the retained checkpoint where that
  class's val usefulness was highest (a per-class member, a pair, is already its class's own).

Both are drawn with the run's export settings (count, judge filter). For each, a CAS classifier
(the run's evaluator settings, `cas_epochs` passes' worth) trains on the pool alone and is tested
on the held-out test split, paired by classifier seed; `--gain` adds real + pool against real
alone (the evaluator's mix, its teacher the seed's ceiling). The choice of epochs reads the val
slice only; nothing here selects with the test split.

    .venv/bin/python bench/class_epochs.py /work/runs/laptop-14 --data-dir /work/shared/data \\
        --seeds 3 [--gain] [--out file.md]

Writes bench/results/class-epochs.json.
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

from common import command_line, emit, git_commit, host_cpu
from evaluator_mixes import (accuracy, checkpoint_draw, kept_draws, member_blend,
                             pool_members)
from image_epochs import prepared_dataset, real_and_test
from laptop_images import checkpoints, logged

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import real_plus  # noqa: E402
from farm.evaluation.evaluator import Task, seed_configs, train_classifier  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402

RESULTS = REPO / "bench" / "results" / "class-epochs.json"


def best_epoch_per_class(experiment: Path, trial: dict, classes: list[str]) -> dict[str, int]:
    """{class: the retained epoch with the highest val usefulness of that class}; the later epoch
    on a tie, as the farm's own choice breaks none toward the start."""
    retained = {epoch for epoch, _ in checkpoints(experiment, trial)}
    best = {}
    for name in classes:
        scores = {e: v for e, v in logged(experiment, trial, f"useful/{name}").items()
                  if e in retained}
        if not scores:
            raise SystemExit(f"{trial['trial']}: no useful/{name} at a retained checkpoint")
        best[name] = max(scores, key=lambda e: (scores[e], e))
    return best


def member_draws(experiment: Path, summary: dict, dataset: str, pool: str, prepared,
                 config: dict) -> tuple[dict, dict, dict, dict]:
    """(members per class, {trial: kept draw}, {trial: {class: images from its best epoch}},
    {trial: {class: that epoch}})."""
    classes = list(prepared.images.classes)
    members_of = pool_members(summary, dataset, pool, classes)
    kept = kept_draws(experiment, members_of, prepared, config)
    per_class, epochs = {}, {}
    trials = {t["trial"]: t for members in members_of.values() for t in members}
    for name, trial in trials.items():
        if trial.get("class"):  # one class's own trial: nothing to choose per class
            continue
        best = best_epoch_per_class(experiment, trial, classes)
        folders = dict(checkpoints(experiment, trial))
        drawn = {e: checkpoint_draw(folders[e], prepared, config) for e in set(best.values())}
        per_class[name] = {c: drawn[best[c]][c] for c in classes}
        epochs[name] = best
        print(f"{name}: kept epoch {trial['best_epoch']}; classes from epochs "
              f"{sorted(set(best.values()))}", flush=True)
    return members_of, kept, per_class, epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--pool", default="all-blend")
    parser.add_argument("--seeds", type=int, help="classifier seeds (default: the run's)")
    parser.add_argument("--gain", action="store_true",
                        help="also real + pool against real alone, per seed")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    summary = json.loads((args.experiment / "summary.json").read_text())
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    classes = list(prepared.images.classes)
    base = evaluator_config(config.get("evaluator"))
    if args.seeds:
        base = dataclasses.replace(base, seeds=args.seeds)
    members_of, kept, per_class, epochs = member_draws(args.experiment, summary, args.dataset,
                                                       args.pool, prepared, config)
    if not per_class:
        raise SystemExit(f"pool {args.pool} has no conditional member: nothing to choose per "
                         "class")
    pools = {"kept": member_blend(members_of, kept, classes),
             "per-class": member_blend(members_of, {**kept, **per_class}, classes)}
    real, test = real_and_test(prepared)
    n_classes, device = len(classes), torch.device("cpu")
    acc: dict[str, list[float]] = {}

    def fit(key, task, seed_config, teacher=None):
        started = time.perf_counter()
        model, steps = train_classifier(task, n_classes, seed_config, device,
                                        say=lambda _l: None, reference_images=len(real.labels),
                                        teacher=teacher)
        acc.setdefault(key, []).append(accuracy(model, task, test, n_classes, seed_config, steps,
                                                started))
        print(f"seed {seed_config.seed}: {key} {acc[key][-1]:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        return model

    for seed_config in seed_configs(base):
        teacher = fit("ceiling", real, seed_config) if args.gain else None
        for name, (x, y) in pools.items():
            fit(f"cas/{name}", Task(f"synthetic/{name}", x, y, passes=base.cas_passes),
                seed_config)
            if args.gain:
                fit(f"gain/{name}", real_plus(f"real+synthetic/{name}", real, x, y),
                    seed_config, teacher)

    tests = len(test.labels)
    figures = {"commit": git_commit(), "host": host_cpu(), "command": command_line(),
               "experiment": args.experiment.name, "pool": args.pool,
               "protocol": base.describe(), "test_images": tests, "seeds": base.seeds,
               "first_seed": base.seed, "accuracies": acc,
               "class_epochs": epochs,
               "cas_per_class_over_kept": paired_gain(acc["cas/per-class"], acc["cas/kept"])}
    if args.gain:
        for name in pools:
            figures[f"gain_{name}"] = paired_gain(acc[f"gain/{name}"], acc["ceiling"])
        figures["gain_per_class_over_kept"] = paired_gain(acc["gain/per-class"],
                                                          acc["gain/kept"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")

    def line(g):
        ci = f" [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g.get("ci") else ""
        return f"{g['mean']:+.3f}{ci}"

    lines = [f"# Each class from its own best epoch: {args.experiment.name}, {args.pool}", "",
             f"- protocol: {base.describe()}; {tests} test images (one is {1 / tests:.4f}); "
             f"classifier seeds {base.seed}-{base.seed + base.seeds - 1}", ""]
    lines += [f"- {key}: {np.mean(v):.3f} ({' / '.join(f'{a:.3f}' for a in v)})"
              for key, v in acc.items()]
    lines += ["", f"- CAS, per-class epochs over the kept ones: "
                  f"{line(figures['cas_per_class_over_kept'])}"]
    if args.gain:
        lines += [f"- real + {name} over real alone: {line(figures[f'gain_{name}'])}"
                  for name in pools]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
