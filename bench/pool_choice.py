"""Does the farm's pool score rank pools as CAS does? Pools built from several runs' trials.

The farm chooses its best pool by the pool's own val usefulness (a linear probe in the judge's
feature space, trained on the pool's images, tested on the val slice). This bench builds the
pools a run would build from the trials of one or more finished runs on the same split and
judge (`RUN:FAMILY`, e.g. laptop-8's conditional trials with laptop-pairs-3's pairs), and for
each pool prints that score beside what the score is meant to predict: CAS, a classifier trained
on the pool's pixels with the evaluator's settings and tested on the held-out test split
(`--cas-seeds`, default 1; 0 to skip). With `--also-val`, the same classifiers are also tested
on the val slice: a pixel classifier's val accuracy is a pool score the farm could choose by
before any test image is seen. `--only` trains just the named pools (every run's pools include
`all-blend` since 47b88bc, so `--only all-blend` measures it on an older run's trials).

    .venv/bin/python bench/pool_choice.py /work/runs/laptop-8:conditional \
        /work/runs/laptop-pairs-3:fruit-pairs --data-dir /work/shared/data

The first run's split, judge and evaluator settings are used. Writes
bench/results/pool-choice.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import command_line, emit, git_commit, host_cpu
from evaluator_mixes import accuracy
from image_epochs import prepared_dataset, real_and_test, split_task

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import pool_usefulness  # noqa: E402
from farm.evaluation.evaluator import Task, seed_configs, train_classifier  # noqa: E402
from farm.evaluation.pools import best_of, candidates, read_pool, same_as, write_pool  # noqa: E402

RESULTS = REPO / "bench" / "results" / "pool-choice.json"


def trials_of(sources: list[str]) -> list[dict]:
    """The summary records of `RUN:FAMILY` sources (a run alone: all its image trials)."""
    trials = []
    for source in sources:
        run, _, family = source.partition(":")
        summary = json.loads((Path(run) / "summary.json").read_text())
        for trial in summary["trials"]:
            if trial.get("synthetic_dir") and (not family or trial["family"] == family):
                trial = dict(trial)
                trial.pop("pools", None)
                trials.append(trial)
    return trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", metavar="RUN[:FAMILY]")
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--cas-seeds", type=int, default=1)
    parser.add_argument("--also-val", action="store_true",
                        help="also test each CAS classifier on the val slice")
    parser.add_argument("--only", help="comma-separated pool names to train (default: all)")
    parser.add_argument("--passes", type=int,
                        help="passes over the real train split (default: the run's evaluator's)")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    first = Path(args.sources[0].partition(":")[0])
    prepared, config = prepared_dataset(first, args.dataset, args.data_dir)
    classes = list(prepared.images.classes)
    evaluator = evaluator_config(config.get("evaluator"))
    if args.passes:
        evaluator = dataclasses.replace(evaluator, epochs=args.passes)
    real, test = real_and_test(prepared)
    val = split_task(prepared, "val", "val")
    pools = best_of(candidates(trials_of(args.sources)), classes)
    if args.only:
        pools = {name: pools[name] for name in args.only.split(",")}
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-pool-choice-") as tmp:
        for name, members in pools.items():
            if same_as(pools, name):
                continue
            write_pool(Path(tmp) / name, name, args.dataset, members)
            x, y = read_pool(Path(tmp) / name, classes)
            families: dict[str, int] = {}
            for trials in members.values():
                for trial in trials:
                    families[trial["family"]] = families.get(trial["family"], 0) + 1
            cas, on_val = [], []
            for config_seed in seed_configs(evaluator)[:args.cas_seeds]:
                started = time.perf_counter()
                task = Task(name, x, y)
                model, steps = train_classifier(task, len(classes), config_seed,
                                                torch.device("cpu"), say=lambda _l: None,
                                                reference_images=len(real.labels))
                cas.append(accuracy(model, task, test, len(classes), config_seed, steps,
                                    started))
                if args.also_val:
                    on_val.append(accuracy(model, task, val, len(classes), config_seed, steps,
                                           started))
            rows[name] = {"usefulness": pool_usefulness(prepared.trial_data, x, y),
                          "cas": cas, "val_accuracy": on_val, "images": int(len(y)),
                          "members": families}
            print(f"{name}: usefulness {rows[name]['usefulness']:.3f}, CAS "
                  f"{' / '.join(f'{a:.3f}' for a in cas) or 'not trained'}, val accuracy "
                  f"{' / '.join(f'{a:.3f}' for a in on_val) or '-'}", flush=True)
    by_score = sorted(rows, key=lambda n: -rows[n]["usefulness"])
    result = {"commit": git_commit(), "command": command_line(), "device": host_cpu(),
              "threads": torch.get_num_threads(), "sources": args.sources,
              "protocol": evaluator.describe(), "test_images": int(len(test.labels)),
              "val_images": int(len(val.labels)),
              "pools": rows, "chosen_by_score": by_score[0] if by_score else None}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Pool choice: {', '.join(args.sources)}", "",
             f"- CAS: {evaluator.describe()}; {len(test.labels)} test images (one is "
             f"{1 / len(test.labels):.4f}); {result['device']}, {result['threads']} threads; "
             f"commit {result['commit']}", "",
             "| pool | val usefulness (the farm's score) | the classifier on val | CAS | members |",
             "|---|---|---|---|---|"]
    for name in by_score:
        row = rows[name]
        cas = f"{np.mean(row['cas']):.3f}" if row["cas"] else "-"
        on_val = f"{np.mean(row['val_accuracy']):.3f}" if row["val_accuracy"] else "-"
        lines.append(f"| {name} | {row['usefulness']:.3f} | {on_val} | {cas} | "
                     f"{', '.join(f'{k} {v}' for k, v in row['members'].items())} |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
