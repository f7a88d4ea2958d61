"""Does a conditional trial teach more from other retained epochs than from its kept one?

A conditional trial keeps one epoch for all its classes, chosen by its mean val usefulness. This
bench builds one of a run's pools (default `all-blend`) twice from the members the farm chose:
`kept`, every member drawn at its kept checkpoint as the farm builds the pool, and one
alternative (`--choice`) for the conditional members (a per-class member, a pair, is already
its class's own and stays as it is):

* `per-class`: each class drawn from the retained checkpoint where that class's val usefulness
  (`useful/<class>`) was highest. Its per-class usefulness peaks at different epochs for
  different classes (laptop-13's seed 0: grapefruits 0.001 at epoch 10 and 0.993 at 90; apples
  0.262 at 20 and under 0.02 after 40).
* `top-K`: the trial's K retained checkpoints with the best mean val usefulness (its own
  selection metric; the kept one first), every class's images taken in turn from each, as many
  as one draw holds (image i from epoch i mod K: each from its own noise). The same share of the pool per member: only the variety of epochs changes
  (laptop-15's blend of epochs 100 / 70 / 30 beat laptop-14's 70 / 100 / 90 by +0.048 CAS,
  where the epochs one by one scored lower).

Both are drawn with the run's export settings (count, judge filter). For each, a CAS classifier
(the run's evaluator settings, `cas_epochs` passes' worth) trains on the pool alone and is tested
on the held-out test split, paired by classifier seed; `--gain` adds real + pool against real
alone (the evaluator's mix, its teacher the seed's ceiling). `--kept-from-run` takes the kept
pool's CAS and real + pool from the run's own evaluator (the same classifiers: the farm is
deterministic on one machine) and checks that the ceiling trained here is the run's. The choice
of epochs reads the val slice only; nothing here selects with the test split.

    .venv/bin/python bench/class_epochs.py /work/runs/laptop-14 --data-dir /work/shared/data \\
        --seeds 3 [--choice top-2] [--gain] [--kept-from-run] [--out file.md]

Writes bench/results/class-epochs.json (`top-K`: bench/results/top-epochs.json).
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
                             pool_members, same_ceiling)
from image_epochs import prepared_dataset, real_and_test
from laptop_images import checkpoints, logged

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import real_plus  # noqa: E402
from farm.evaluation.evaluator import Task, seed_configs, train_classifier  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402

RESULTS = {"per-class": REPO / "bench" / "results" / "class-epochs.json",
           "top": REPO / "bench" / "results" / "top-epochs.json"}


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


def top_epochs(experiment: Path, trial: dict, k: int) -> list[int]:
    """The trial's k retained epochs with the best mean val usefulness (its selection metric),
    best first; the later epoch on a tie."""
    retained = {epoch for epoch, _ in checkpoints(experiment, trial)}
    scores = {e: v for e, v in logged(experiment, trial, "useful").items() if e in retained}
    if len(scores) < k:
        raise SystemExit(f"{trial['trial']}: {len(scores)} retained checkpoint(s) with a logged "
                         f"usefulness, fewer than the {k} asked for")
    return sorted(scores, key=lambda e: (scores[e], e), reverse=True)[:k]


def top_k(choice: str) -> int | None:
    """K of a `top-K` choice; None for `per-class`; anything else stops with one line."""
    if choice == "per-class":
        return None
    k = choice.removeprefix("top-")
    if choice.startswith("top-") and k.isdigit() and int(k) >= 2:
        return int(k)
    raise SystemExit(f"--choice is per-class or top-K with K at least 2, not {choice!r}")


def member_draws(experiment: Path, summary: dict, dataset: str, pool: str, prepared,
                 config: dict, choice: str) -> tuple[dict, dict, dict, dict]:
    """(members per class, {trial: kept draw}, {trial: {class: images of the alternative}},
    {trial: the epochs it drew from, per class for per-class})."""
    classes = list(prepared.images.classes)
    members_of = pool_members(summary, dataset, pool, classes)
    kept = kept_draws(experiment, members_of, prepared, config)
    other, epochs = {}, {}
    trials = {t["trial"]: t for members in members_of.values() for t in members}
    for name, trial in trials.items():
        if trial.get("class"):  # one class's own trial: nothing to choose per class
            continue
        folders = dict(checkpoints(experiment, trial))
        k = top_k(choice)
        if k is None:
            best = best_epoch_per_class(experiment, trial, classes)
            drawn = {e: checkpoint_draw(folders[e], prepared, config) for e in set(best.values())}
            other[name] = {c: drawn[best[c]][c] for c in classes}
            epochs[name] = best
            used = sorted(set(best.values()))
        else:
            used = top_epochs(experiment, trial, k)
            if used[0] != trial["best_epoch"]:
                raise SystemExit(f"{name}: the best logged usefulness is at epoch {used[0]}, "
                                 f"not the kept {trial['best_epoch']}")
            drawn = [checkpoint_draw(folders[e], prepared, config) for e in used]
            # image i of a class from epoch i mod K: every image from its own noise vector
            other[name] = {c: np.stack([drawn[i % len(drawn)][c][i]
                                        for i in range(len(drawn[0][c]))]) for c in classes}
            epochs[name] = used
        print(f"{name}: kept epoch {trial['best_epoch']}; {choice} from epochs {used}",
              flush=True)
    return members_of, kept, other, epochs


def run_kept(summary: dict, dataset: str, pool: str) -> dict[str, list[float]]:
    """The run's own figures of the kept pool, per classifier seed: ceiling, CAS, real + pool."""
    section = summary["evaluator"]["datasets"][dataset]
    figures = section["pools"][pool]
    if "cas" not in figures:
        raise SystemExit(f"the run trained no classifier on pool {pool} (its choice was "
                         f"{section.get('best_pool')}): drop --kept-from-run")
    return {"ceiling": section["ceiling"]["accuracies"], "cas/kept": figures["cas"]["accuracies"],
            "gain/kept": figures["real_plus_synthetic"]["accuracies"],
            "seeds": figures["cas"]["seeds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--pool", default="all-blend")
    parser.add_argument("--seeds", type=int, help="classifier seeds (default: the run's)")
    parser.add_argument("--choice", default="per-class",
                        help="the alternative to the kept epochs: per-class, or top-K")
    parser.add_argument("--gain", action="store_true",
                        help="also real + pool against real alone, per seed")
    parser.add_argument("--kept-from-run", action="store_true",
                        help="the kept pool's figures from the run's own evaluator")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    top_k(args.choice)  # a bad --choice stops here, before anything is drawn

    summary = json.loads((args.experiment / "summary.json").read_text())
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    classes = list(prepared.images.classes)
    base = evaluator_config(config.get("evaluator"))
    if args.seeds:
        base = dataclasses.replace(base, seeds=args.seeds)
    alt = args.choice
    members_of, kept, other, epochs = member_draws(args.experiment, summary, args.dataset,
                                                   args.pool, prepared, config, alt)
    if not other:
        raise SystemExit(f"pool {args.pool} has no conditional member: no epochs to choose")
    pools = {"kept": member_blend(members_of, kept, classes),
             alt: member_blend(members_of, {**kept, **other}, classes)}
    real, test = real_and_test(prepared)
    n_classes, device = len(classes), torch.device("cpu")
    acc: dict[str, list[float]] = {}
    from_run = run_kept(summary, args.dataset, args.pool) if args.kept_from_run else None
    if from_run:
        if not args.gain:
            raise SystemExit("--kept-from-run checks the run's ceiling: add --gain")
        pools.pop("kept")

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
        if from_run:
            at = from_run["seeds"].index(seed_config.seed)
            same_ceiling(seed_config.seed, acc["ceiling"][-1], from_run["ceiling"][at],
                         "its kept pool's figures")
            for key in ("cas/kept", "gain/kept"):
                acc.setdefault(key, []).append(from_run[key][at])
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
               "choice": alt, "kept_from_run": bool(from_run), "epochs": epochs,
               f"cas_{alt}_over_kept": paired_gain(acc[f"cas/{alt}"], acc["cas/kept"])}
    if args.gain:
        for name in ("kept", alt):
            figures[f"gain_{name}"] = paired_gain(acc[f"gain/{name}"], acc["ceiling"])
        figures[f"gain_{alt}_over_kept"] = paired_gain(acc[f"gain/{alt}"], acc["gain/kept"])
    results = RESULTS["per-class" if top_k(alt) is None else "top"]
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(figures, indent=1) + "\n")

    def line(g):
        ci = f" [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g.get("ci") else ""
        return f"{g['mean']:+.3f}{ci}"

    lines = [f"# The kept epochs against {alt}: {args.experiment.name}, {args.pool}", "",
             f"- protocol: {base.describe()}; {tests} test images (one is {1 / tests:.4f}); "
             f"classifier seeds {base.seed}-{base.seed + base.seeds - 1}", ""]
    lines += [f"- {key}: {np.mean(v):.3f} ({' / '.join(f'{a:.3f}' for a in v)})"
              for key, v in acc.items()]
    lines += ["", f"- CAS, {alt} over the kept epochs: {line(figures[f'cas_{alt}_over_kept'])}"]
    if args.gain:
        lines += [f"- real + {name} over real alone: {line(figures[f'gain_{name}'])}"
                  for name in ("kept", alt)]
        lines += [f"- real + {alt} over real + kept: {line(figures[f'gain_{alt}_over_kept'])}"]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
