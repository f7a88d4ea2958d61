"""Which setting of an image family grows the more useful images? Settings compared over GAN seeds.

Issue 18 asks for the small-data settings (`conditional` `tiny-data` against `plain`,
`fruit-pairs` `stable` against the report's own `report`) to be compared over at least 3 GAN
seeds. One or more finished runs on the same split are read; every (family, variant, GAN seed)
is one unit:

* an all-class trial is its exported images (the kept checkpoint, as the farm exported them);
* per-class trials of one variant and seed together make one pool, each class from its own
  pair; the unit also counts its collapsed classes (diversity at the kept epoch below 0.2).

Each unit's CAS is a classifier trained on its images alone with the run's evaluator settings,
tested on the held-out test split (`--classifier-seeds`, default 1; the GAN seed is what moves
CAS most). Its val usefulness at the kept epoch (the mean over its classes) is printed beside it.
Two variants of a family are compared paired by GAN seed, with a 95% t interval.

    .venv/bin/python bench/laptop_settings.py RUN [RUN ...] [--classifier-seeds 1]

Writes bench/results/laptop-settings.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from common import emit, git_commit, host_cpu
from image_epochs import COLLAPSED, prepared_dataset, real_and_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluator import Task, fit_and_test, seed_configs  # noqa: E402
from farm.evaluation.pools import USEFUL, class_metric, read_pool  # noqa: E402
from farm.metrics.paired import paired_gain, spread  # noqa: E402
from farm.models.classifier import scores  # noqa: E402

RESULTS = REPO / "bench" / "results" / "laptop-settings.json"


def repeat(trial: dict) -> int:
    """Which GAN seed of its setting a trial is (0, 1, ...): the plan tags repeats `seed#k`."""
    for part in str(trial.get("setting", "")).split(","):
        if part.startswith("seed#"):
            return int(part[len("seed#"):])
    return 0


def units(runs: list[Path], dataset: str) -> dict[tuple, dict]:
    """{(family, variant, seed): {"trials": [...], "run": path}} over the runs; a unit a
    later run grows again is taken from the first run that has it."""
    out: dict[tuple, dict] = {}
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        mine: dict[tuple, list] = {}
        for t in summary["trials"]:
            if t["dataset"] == dataset and t.get("status") == "ok" and t.get("synthetic_dir"):
                mine.setdefault((t["family"], t.get("variant"), repeat(t)), []).append(t)
        for key, trials in mine.items():
            out.setdefault(key, {"trials": trials, "run": str(run)})
    return out


def unit_images(trials: list[dict], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A unit's exported images and labels: one all-class trial's, or every pair's of its class."""
    parts = [read_pool(Path(t["synthetic_dir"]), classes) for t in trials]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def unit_quality(trials: list[dict], classes: list[str]) -> dict:
    """Val usefulness (mean over classes) and diversity of a unit at its kept epochs."""
    useful, diversity = [], []
    for t in trials:
        names = [t["class"]] if t.get("class") is not None else classes
        useful += [v for v in (class_metric(t, c, USEFUL) for c in names) if v is not None]
        if t.get("class") is not None:
            value = (t.get("metrics") or {}).get("diversity")
            if value is not None:
                diversity.append(float(value))
    return {"usefulness": float(np.mean(useful)) if useful else None,
            "collapsed": sum(d < COLLAPSED for d in diversity) if diversity else None,
            "min_diversity": min(diversity) if diversity else None,
            "classes": len({c for t in trials for c in ([t["class"]] if t.get("class")
                                                          is not None else classes)})}


def cas(x, y, test: Task, classes: int, configs, reference: int) -> list[float]:
    """Accuracy on the test split of a classifier trained on (x, y), one per config."""
    out = []
    for config in configs:
        result = fit_and_test(Task("unit", x, y), test, classes, config, torch.device("cpu"),
                              say=lambda _line: None, reference_images=reference)
        out.append(scores(result["matrix"], range(classes))["accuracy"])
    return out


def compare(rows: list[dict]) -> list[dict]:
    """Every pair of variants of a family, paired by the GAN seeds both have."""
    out = []
    by_family: dict[str, dict] = {}
    for r in rows:
        by_family.setdefault(r["family"], {}).setdefault(r["variant"], {})[r["seed"]] = r
    for family, variants in by_family.items():
        for a, b in itertools.combinations(sorted(variants), 2):
            seeds = sorted(set(variants[a]) & set(variants[b]))
            if len(seeds) < 2:
                continue
            diff = paired_gain([np.mean(variants[a][s]["cas"]) for s in seeds],
                               [np.mean(variants[b][s]["cas"]) for s in seeds])
            out.append({"family": family, "a": a, "b": b, "seeds": seeds,
                        "cas_a_minus_b": diff["mean"], "ci": diff["ci"],
                        "per_seed": diff["per_seed"]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--data-dir", help="where the dataset is, if not where the run found it")
    parser.add_argument("--classifier-seeds", type=int, default=1)
    parser.add_argument("--passes", type=int, help="classifier passes (default: the run's)")
    parser.add_argument("--protocol-from", type=Path, metavar="RUN",
                        help="the run whose evaluator settings train every unit (default: the "
                             "first run)")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--reuse", type=Path, metavar="JSON",
                        help="an earlier laptop-settings.json: its units of the same run, "
                             "protocol and classifier seeds are not trained again")
    args = parser.parse_args()

    first = args.runs[0]
    prepared, config = prepared_dataset(first, args.dataset, args.data_dir)
    for run in args.runs[1:]:  # every unit's CAS is on one test split: the runs must share it
        other, _ = prepared_dataset(run, args.dataset, args.data_dir)
        if list(other.split.test) != list(prepared.split.test):
            raise SystemExit(f"{run}: another test split than {first}'s; compare runs of one split")
    if args.protocol_from:
        config = json.loads((args.protocol_from / "run.json").read_text())["config"]
    evaluator = evaluator_config(config.get("evaluator"))
    evaluator = dataclasses.replace(evaluator, seeds=args.classifier_seeds,
                                    epochs=args.passes or evaluator.epochs)
    classes = list(prepared.images.classes)
    real, test = real_and_test(prepared)
    reference = len(real.labels)
    configs = seed_configs(evaluator)

    earlier = {}
    if args.reuse:
        stored = json.loads(args.reuse.read_text())
        if stored["protocol"] == evaluator.describe():
            earlier = {(r["family"], r["variant"], r["seed"], r["run"]): r["cas"]
                       for r in stored["units"]}
    rows = []
    started = time.perf_counter()
    for (family, variant, seed), unit in sorted(units(args.runs, args.dataset).items(),
                                                key=lambda kv: tuple(map(str, kv[0]))):
        x, y = unit_images(unit["trials"], classes)
        accuracies = earlier.get((family, variant, seed, unit["run"]))
        if accuracies is None:
            accuracies = cas(x, y, test, len(classes), configs, reference)
        row = {"family": family, "variant": variant, "seed": seed, "run": unit["run"],
               "images": int(len(y)), "cas": accuracies, **unit_quality(unit["trials"], classes)}
        rows.append(row)
        print(f"[{time.perf_counter() - started:.0f} s] {family} {variant} seed {seed}: CAS "
              f"{' / '.join(f'{a:.3f}' for a in accuracies)}", flush=True)

    comparisons = compare(rows)
    lines = [f"# Settings over GAN seeds: {', '.join(map(str, args.runs))}", "",
             f"- {host_cpu()}, {torch.get_num_threads()} thread(s), commit {git_commit()}",
             f"- CAS: {evaluator.describe()}; {len(test.labels)} test images (one is "
             f"{1 / len(test.labels):.4f})", "",
             "| family | variant | seed | CAS | val usefulness | collapsed classes | "
             "min diversity |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        collapsed = "" if r["collapsed"] is None else f"{r['collapsed']} of {r['classes']}"
        diversity = "" if r["min_diversity"] is None else f"{r['min_diversity']:.3f}"
        useful = "" if r["usefulness"] is None else f"{r['usefulness']:.3f}"
        lines.append(f"| {r['family']} | {r['variant']} | {r['seed']} | "
                     f"{' / '.join(f'{a:.3f}' for a in r['cas'])} | {useful} | {collapsed} | "
                     f"{diversity} |")
    lines += ["", "| family | variant | GAN seeds | mean CAS | sd over seeds |", "|---|---|---|---|---|"]
    for (family, variant), group in itertools.groupby(rows, key=lambda r: (r["family"],
                                                                           r["variant"])):
        values = [float(np.mean(r["cas"])) for r in group]
        lines.append(f"| {family} | {variant} | {len(values)} | {np.mean(values):.3f} | "
                     f"{spread(values):.3f} |")
    lines += ["", "| family | a - b | GAN seeds | CAS difference [95%] | per seed |",
              "|---|---|---|---|---|"]
    for c in comparisons:
        ci = "" if c["ci"] is None else f" [{c['ci'][0]:+.3f}, {c['ci'][1]:+.3f}]"
        lines.append(f"| {c['family']} | {c['a']} - {c['b']} | {len(c['seeds'])} | "
                     f"{c['cas_a_minus_b']:+.3f}{ci} | "
                     f"{' / '.join(f'{d:+.3f}' for d in c['per_seed'])} |")
    emit(lines, args.out)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"commit": git_commit(), "runs": list(map(str, args.runs)),
                                   "protocol": evaluator.describe(),
                                   "test_images": int(len(test.labels)), "units": rows,
                                   "comparisons": comparisons}, indent=1) + "\n")


if __name__ == "__main__":
    main()
