"""A finished experiment's pools under other export and evaluator settings.

How many images each chosen checkpoint exports (`synthetic_per_class`), whether the judge keeps
only the draws most like their class (`judge_filter`), and what share of a real + synthetic pass
is synthetic (`evaluator.synthetic_share`) are settings of the export and the evaluator, not of
the GANs. This script answers "would other values have done better?" from the checkpoints an
experiment already kept: it draws every pool member's class again under each setting, trains
the evaluator's classifier on it (CAS) and on the real train split plus it, and tests both on
the held-out test split, beside the real-data ceiling and the noise control, for one or more
classifier seeds. `--trials` also scores one all-class trial alone (every class from its own
checkpoint): the spread between trials that differ only in their GAN seed is the noise any
comparison of settings must beat. The experiment itself is not touched.

The judge that filters was trained on the train split only, so the test split still decides
nothing; but a filtered pool carries some of the judge's knowledge of the train images, so read
its CAS beside the unfiltered one, not as a GAN's alone.

    .venv/bin/python bench/export_settings.py results/<name> --pools conditional.diffaug \\
        --per-class 32,128 --judge-filter 1,4 --seeds 0,1 [--epochs N] [--share 0.25] [--out f.md]
    .venv/bin/python bench/export_settings.py results/<name> --trials conditional --seeds 0,1
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

from common import emit
from image_epochs import _checkpoint, _spec, reference_sets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config
from farm.evaluation.evaluate_pools import noise_control, real_plus
from farm.evaluation.evaluator import Task, fit_and_test
from farm.evaluation.pools import interleaved
from farm.models.classifier import scores
from farm.pipeline.export import draw_images


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def pool_images(experiment: Path, trials: dict, members: dict, train, per_class: int,
                judge_filter: int, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of one pool drawn again: each class from its members' checkpoints
    (in turn, for a blend). An all-class trial is drawn once per setting and serves every class
    it is a member for."""
    xs, ys = [], []
    for label, name in enumerate(train.classes):
        if name not in members:
            continue
        draws = []
        for trial in (trials[t] for t in members[name]):
            key = (trial["trial"], per_class, judge_filter)
            if key not in cache:
                cache[key] = draw_images(_spec(experiment, trial),
                                         _checkpoint(experiment, trial, trial["checkpoint"]),
                                         train, per_class, judge_filter)[0]
            draws.append(list(cache[key][name]))
        images = np.stack(interleaved(draws))
        xs.append(images)
        ys.append(np.full(len(images), label, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def single_trial_pools(trials: dict, wanted: str, classes) -> dict[str, dict]:
    """{"trial <name> (GAN seed s)": {"members": every class -> [that trial]}} for the all-class
    trials named in `wanted` (trial names, or a family for all of its trials)."""
    keys = set(wanted.split(","))
    chosen = [t for t in trials.values() if t["trial"] in keys or t["family"] in keys]
    per_class = [t["trial"] for t in chosen if t.get("class") is not None]
    if per_class or not chosen:
        raise SystemExit(f"--trials {wanted}: " + (f"{per_class[0]} grows one class, not a pool"
                         if per_class else "no trial or family of that name"))
    return {f"trial {t['trial']} (GAN seed {t['seed']})":
            {"members": {c: [t["trial"]] for c in classes}}
            for t in chosen if t.get("status") == "ok" and t.get("checkpoint")}


def seeds(values: list[float]) -> str:
    return " / ".join(f"{v:.3f}" for v in values)


def accuracy(task: Task, test: Task, classes: int, config, device, reference: int) -> float:
    out = fit_and_test(task, test, classes, config, device, say=lambda _line: None,
                       reference_images=reference)
    return scores(out["matrix"], range(classes))["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--pools", help="comma-separated pool names (default: every trained one; "
                                        "\"\" for none, with --trials)")
    parser.add_argument("--trials", help="also score these all-class trials alone (comma-separated "
                                         "trial names, or a family for all of its trials)")
    parser.add_argument("--per-class", type=_ints, default=[32])
    parser.add_argument("--judge-filter", type=_ints, default=[1])
    parser.add_argument("--share", type=float, help="evaluator.synthetic_share (default: the "
                                                    "experiment's, else the evaluator default)")
    parser.add_argument("--epochs", type=int, help="evaluator.epochs (default: the experiment's)")
    parser.add_argument("--seeds", type=_ints, default=[0], help="classifier seeds")
    parser.add_argument("--data-dir", help="where the dataset is, if not where the run found it")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.time()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    summary = json.loads((args.experiment / "summary.json").read_text())
    stored = json.loads((args.experiment / "run.json").read_text())
    ev = summary["evaluator"]["datasets"][args.dataset]
    overrides = {k: v for k, v in (("epochs", args.epochs), ("synthetic_share", args.share))
                 if v is not None}
    base = evaluator_config({**stored["config"].get("evaluator", {}), **overrides})
    train, test_view = reference_sets(args.experiment, summary, args.dataset, args.data_dir)
    test = Task("test", test_view.images, test_view.labels)
    real = Task("real", train.images, train.labels)
    names = [n for n in args.pools.split(",") if n] if args.pools is not None else \
        [n for n, p in ev["pools"].items() if "same_as" not in p]
    unknown = sorted(set(names) - set(ev["pools"]))
    if unknown:
        raise SystemExit(f"{args.experiment}: no pool {', '.join(unknown)} "
                         f"(it has {', '.join(ev['pools'])})")
    trials = {t["trial"]: t for t in summary["trials"]}
    pools = dict(ev["pools"])
    if args.trials:
        alone = single_trial_pools(trials, args.trials, train.classes)
        pools.update(alone)
        names += list(alone)
    classes, reference = len(train.classes), len(train.labels)
    settings = [(n, k) for n in args.per_class for k in args.judge_filter]

    def mean_over_seeds(task: Task) -> tuple[float, list[float]]:
        values = [accuracy(task, test, classes, dataclasses.replace(base, seed=seed),
                           device, reference) for seed in args.seeds]
        return float(np.mean(values)), values

    ceiling, ceilings = mean_over_seeds(real)
    print(f"real train split: {ceiling:.3f} ({seeds(ceilings)})", flush=True)
    rows, cache, biggest = [], {}, 0
    for name in names:
        for per_class, judge_filter in settings:
            x, y = pool_images(args.experiment, trials, pools[name]["members"], train,
                               per_class, judge_filter, cache)
            biggest = max(biggest, len(y))
            cas, cas_seeds = mean_over_seeds(Task("synthetic", x, y))
            both, both_seeds = mean_over_seeds(real_plus("real+synthetic", real, x, y))
            rows.append((name, per_class, judge_filter, len(y), cas, cas_seeds, both, both_seeds))
            print(f"{name} {per_class}/class filter {judge_filter}: CAS {cas:.3f} "
                  f"({seeds(cas_seeds)}), real + synthetic {both:.3f} ({seeds(both_seeds)})",
                  flush=True)
    control, controls = mean_over_seeds(noise_control(real, biggest, classes, base.seed))

    lines = [f"# Export and evaluator settings: {summary['name']} ({args.dataset})", "",
             f"- evaluator: {base.arch}, {base.epochs} epochs, synthetic share "
             f"{base.synthetic_share}, classifier seeds {args.seeds}; {len(test.labels)} "
             f"held-out test images; device {device}; {time.time() - started:.0f} s",
             f"- real train split (ceiling): {ceiling:.3f} ({seeds(ceilings)})",
             f"- control, real + {biggest} noise images at the same share: {control:.3f} "
             f"({seeds(controls)})", "",
             "| pool | per class | judge filter | images | CAS | CAS / ceiling | "
             "real + synthetic | gain | per seed: CAS; real + synthetic |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, per_class, judge_filter, n, cas, cas_seeds, both, both_seeds in rows:
        lines.append(f"| {name} | {per_class} | {judge_filter} | {n} | {cas:.3f} | "
                     f"{cas / ceiling:.2f} | {both:.3f} | {both - ceiling:+.3f} | "
                     f"{seeds(cas_seeds)}; {seeds(both_seeds)} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
