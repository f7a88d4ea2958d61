"""Does the evaluator give the same answers, faster, with other step settings (bf16 autocast,
channels-last)? A run's evaluator figures against the same classifiers trained again.

For each classifier seed of a finished run, the four classifiers its evaluator trained for the
chosen pool (the ceiling, which is also `distill`'s teacher; CAS; real + the pool; real + noise)
are trained again with the run's evaluator settings changed by `--set` (default: bf16 autocast,
channels-last). Each figure is compared with the run's own for the same seed, paired, with a
95% interval, and so are the gains over real alone that the farm's verdict rests on. Seconds
per classifier are set beside the run's (the same machine and thread count; `--alternate` also
trains the run's settings here, alternating which goes first, for a speed figure from one
process).

    .venv/bin/python bench/evaluator_precision.py /work/runs/laptop-10 --seeds 5 \
        --data-dir /work/shared/data

Writes bench/results/evaluator-precision.json after every seed.
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
import yaml

from common import command_line, emit, git_commit, host_cpu
from evaluator_mixes import accuracy, pool_images
from image_epochs import prepared_dataset, real_and_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import noise_control, real_plus  # noqa: E402
from farm.evaluation.evaluator import Task, seed_configs, train_classifier  # noqa: E402
from farm.metrics.paired import paired_gain  # noqa: E402

RESULTS = REPO / "bench" / "results" / "evaluator-precision.json"
TASKS = ("ceiling", "cas", "real+pool", "real+noise")  # in the farm's order: the teacher first


def run_figures(summary: dict, dataset: str) -> tuple[dict[str, dict[int, float]], dict]:
    """{task: {seed: accuracy}} and {task: seconds a classifier} as the run's evaluator
    measured them for its chosen pool."""
    section = summary["evaluator"]["datasets"][dataset]
    pool = section["pools"][section["best_pool"]]
    records = {"ceiling": section["ceiling"], "cas": pool["cas"],
               "real+pool": pool["real_plus_synthetic"], "real+noise": section["control"]}
    figures = {task: dict(zip(r["seeds"], r["accuracies"])) for task, r in records.items()}
    seconds = {task: r["seconds"] / len(r["seeds"]) for task, r in records.items()}
    return figures, seconds


def parse_sets(pairs: list[str]) -> dict:
    """`autocast=bf16 channels_last=true` -> {"autocast": "bf16", "channels_last": True}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, got {pair!r}")
        out[key] = yaml.safe_load(value) if value else ""
    return out


def train_four(config, tasks: dict[str, Task], test: Task, classes: int, reference: int):
    """{task: (accuracy, seconds)} for one seed's four classifiers under `config`."""
    out, teacher = {}, None
    for name in TASKS:
        task = tasks[name]
        started = time.perf_counter()
        model, steps = train_classifier(task, classes, config, torch.device("cpu"),
                                        say=lambda _l: None, reference_images=reference,
                                        teacher=teacher)
        out[name] = (accuracy(model, task, test, classes, config, steps, started),
                     time.perf_counter() - started)
        if name == "ceiling":
            teacher = model
    return out


def compared(mine: dict[str, list], theirs: dict[str, list]) -> dict:
    """Per task, mine - theirs paired by seed; and each side's gains over real alone."""
    diff = {task: paired_gain(mine[task], theirs[task]) for task in TASKS}
    gains = {side: {"pool_gain": paired_gain(f["real+pool"], f["ceiling"]),
                    "noise_gain": paired_gain(f["real+noise"], f["ceiling"]),
                    "over_noise": paired_gain(f["real+pool"], f["real+noise"])}
             for side, f in (("candidate", mine), ("reference", theirs))}
    return {"difference": diff, "gains": gains}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--set", nargs="*", default=["autocast=bf16", "channels_last=true"],
                        metavar="KEY=VALUE", help="evaluator settings to change")
    parser.add_argument("--seeds", type=int, help="the run's first N classifier seeds")
    parser.add_argument("--alternate", action="store_true",
                        help="also train the run's settings here, alternating the order")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    summary = json.loads((args.experiment / "summary.json").read_text())
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    reference_config = evaluator_config(config.get("evaluator"))
    changes = parse_sets(args.set)
    candidate_config = evaluator_config({**dataclasses.asdict(reference_config), **changes})
    figures, run_seconds = run_figures(summary, args.dataset)
    real, test = real_and_test(prepared)
    classes = len(prepared.images.classes)
    _, x, y = pool_images(args.experiment, summary, args.dataset, None, prepared, config)
    tasks = {"ceiling": real, "cas": Task("synthetic", x, y),
             "real+pool": real_plus("real+synthetic", real, x, y),
             "real+noise": noise_control(real, len(y), classes, reference_config.seed)}
    seeds = seed_configs(reference_config)[:args.seeds or reference_config.seeds]
    mine: dict[str, list] = {t: [] for t in TASKS}
    theirs: dict[str, list] = {t: [] for t in TASKS}
    seconds: dict[str, dict[str, list]] = {"candidate": {t: [] for t in TASKS},
                                           "reference": {t: [] for t in TASKS}}
    meta = {"commit": git_commit(), "command": command_line(), "device": host_cpu(),
            "threads": torch.get_num_threads(), "experiment": args.experiment.name,
            "changes": changes, "reference_protocol": reference_config.describe(),
            "candidate_protocol": candidate_config.describe(),
            "test_images": int(len(test.labels))}
    for i, ref in enumerate(seeds):
        cand = dataclasses.replace(candidate_config, seed=ref.seed)
        order = [("candidate", cand), ("reference", ref)] if args.alternate else [
            ("candidate", cand)]
        if args.alternate and i % 2:
            order.reverse()
        for side, cfg in order:
            got = train_four(cfg, tasks, test, classes, len(real.labels))
            for task, (acc, secs) in got.items():
                seconds[side][task].append(secs)
                if side == "candidate":
                    mine[task].append(acc)
                else:
                    # the run's settings trained here should give the run's figures
                    print(f"seed {ref.seed}: reference {task} {acc:.4f} here, "
                          f"{figures[task][ref.seed]:.4f} in the run", flush=True)
        for task in TASKS:
            theirs[task].append(figures[task][ref.seed])
        print(f"seed {ref.seed}: " + ", ".join(
            f"{t} {mine[t][-1]:.3f} (run {theirs[t][-1]:.3f}, {seconds['candidate'][t][-1]:.0f} s)"
            for t in TASKS), flush=True)
        result = {**meta, "seeds": [c.seed for c in seeds[:i + 1]], "candidate": mine,
                  "reference": theirs, **compared(mine, theirs),
                  "seconds_per_classifier": {
                      "candidate": {t: float(np.mean(v)) for t, v in seconds["candidate"].items()},
                      "reference_here": {t: float(np.mean(v)) for t, v in
                                         seconds["reference"].items() if v},
                      "reference_run": run_seconds}}
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")

    def fig(g):
        ci = f" [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g.get("ci") else ""
        return f"{g['mean']:+.3f}{ci}"

    per = result["seconds_per_classifier"]
    lines = [f"# Evaluator step settings: {args.experiment.name}, {len(seeds)} classifier seeds",
             "", f"- reference (the run): {meta['reference_protocol']}",
             f"- candidate: {meta['candidate_protocol']}",
             f"- {meta['test_images']} test images (one is {1 / meta['test_images']:.4f}); "
             f"{meta['device']}, {meta['threads']} threads; commit {meta['commit']}", "",
             "| task | candidate | run | candidate - run | s / classifier (candidate, run) |",
             "|---|---|---|---|---|"]
    for task in TASKS:
        lines.append(f"| {task} | {np.mean(mine[task]):.3f} | {np.mean(theirs[task]):.3f} | "
                     f"{fig(result['difference'][task])} | {per['candidate'][task]:.0f}, "
                     f"{per['reference_run'][task]:.0f} |")
    lines += ["", "| gain over real | candidate | run |", "|---|---|---|"]
    for key in ("pool_gain", "noise_gain", "over_noise"):
        lines.append(f"| {key} | {fig(result['gains']['candidate'][key])} | "
                     f"{fig(result['gains']['reference'][key])} |")
    total_c = sum(per["candidate"].values())
    total_r = sum(per["reference_run"].values())
    lines += ["", f"- four classifiers a seed: {total_c:.0f} s against the run's {total_r:.0f} s "
              f"({total_r / total_c:.2f}x)"]
    if per["reference_here"]:
        here = sum(per["reference_here"].values())
        lines.append(f"- the run's settings trained here: {here:.0f} s ({here / total_c:.2f}x)")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
