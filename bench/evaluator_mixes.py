"""Which way of adding synthetic images makes them help? One pool under several `mix` settings.

The evaluator's answer depends on the protocol as much as on the images (issue 18). This bench
takes one pool of a run, either the pool the farm chose (its summary's `best_pool`), the
images of one all-class checkpoint (`--checkpoint TRIAL/checkpoint_N`, drawn as the export
draws them), a pool the farm builds from the run's trials (`--pool all-blend`), or a blend of several (comma-separated: every class takes its images in turn from
each), and trains, per classifier seed:

* the ceiling (the real train split alone; in `distill` it is the teacher, as in the farm's job);
* for each mix: real + the pool, and real + as many noise images (the control), both under it.

It prints each mix's gain over real alone and over its own noise control, paired by seed with a
95% interval, and the farm's verdict line. The evaluator's settings are the run's unless
`--preset` names a preset whose `evaluator:` section is used instead. A mix is a name
(`extra`, `pretrain`, `share`, `distill`), optionally with `:WEIGHT` (distill's teacher share)
and `+bn` (separate batch-norm statistics for synthetic batches): `distill:1.0+bn`.

    .venv/bin/python bench/evaluator_mixes.py /work/runs/laptop-3 --mixes extra,distill:1.0

Writes bench/results/evaluator-mixes.json.
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

from common import emit, git_commit
from image_epochs import _checkpoint, prepared_dataset, real_and_test

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import EvaluatorConfig, evaluator_config  # noqa: E402
from farm.config.load import load_config  # noqa: E402
from farm.evaluation.evaluate_pools import noise_control, real_plus, verdict  # noqa: E402
from farm.evaluation.evaluator import seed_configs, tested, train_classifier  # noqa: E402
from farm.evaluation.pools import (best_of, candidates, interleaved, read_pool,  # noqa: E402
                                   write_pool)
from farm.metrics.paired import paired_gain  # noqa: E402
from farm.models.classifier import scores  # noqa: E402
from farm.pipeline.export import draw_images  # noqa: E402

RESULTS = REPO / "bench" / "results" / "evaluator-mixes.json"


def parse_mix(text: str, base: EvaluatorConfig) -> EvaluatorConfig:
    """`distill:1.0+bn` -> the base config with mix distill, distill_weight 1.0, separate_bn."""
    name, bn = (text[:-3], True) if text.endswith("+bn") else (text, False)
    mix, _, weight = name.partition(":")
    config = dataclasses.replace(base, mix=mix, separate_bn=bn)
    if weight:
        config = dataclasses.replace(config, distill_weight=float(weight))
    return config


def checkpoint_draw(folder: Path, prepared, config: dict, judge_filter: int | None = None,
                    per_class: int | None = None) -> dict:
    """{class: uint8 images} of one checkpoint (a TRIAL/checkpoint_N folder), drawn as the
    export draws them: `per_class` a class (default: the run's `synthetic_per_class`), under the
    run's judge filter unless `judge_filter` says otherwise."""
    spec = json.loads((folder.parent / "params.json").read_text())["trial"]
    images_cfg = config["data"].get("images", {})
    keep = judge_filter or int(images_cfg.get("judge_filter", 1))
    count = per_class or int(images_cfg.get("synthetic_per_class", 32))
    return draw_images(spec, folder, prepared.trial_data, count, keep)[0]


def stacked(picks: dict[str, list], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from each class's picked images, labelled by the class's index."""
    xs = [np.stack(picks[name]) for name in classes]
    ys = [np.full(len(x), label, dtype=np.int64) for label, x in enumerate(xs)]
    return np.concatenate(xs), np.concatenate(ys)


def blended(draws: list[dict], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) with every class's images taken in turn from each draw, as the farm's
    `<family>-blend` pool takes them: as many as one draw holds."""
    return stacked({name: interleaved([list(draw[name]) for draw in draws])
                    for name in classes}, classes)


def pool_members(summary: dict, dataset: str, name: str, classes: list[str]) -> dict:
    """{class: [trial, ...]}: the members the farm would choose for pool `name` from the run's
    trials today (farm.evaluation.pools), whether or not the run built that pool."""
    trials = [{k: v for k, v in t.items() if k != "pools"} for t in summary["trials"]
              if t["dataset"] == dataset and t.get("synthetic_dir")]
    pools = best_of(candidates(trials), classes)
    if name not in pools:
        raise SystemExit(f"the run's trials build no pool {name!r} (they build "
                         f"{', '.join(pools)})")
    return pools[name]


def built_pool(summary: dict, dataset: str, name: str, classes: list[str]):
    """(images, labels) of pool `name` as the farm would build it from the run's trials today,
    e.g. `all-blend` on a run made before that pool existed."""
    members = pool_members(summary, dataset, name, classes)
    with tempfile.TemporaryDirectory(prefix="bench-mixes-pool-") as tmp:
        write_pool(Path(tmp) / name, name, dataset, members)
        return read_pool(Path(tmp) / name, classes)


def kept_draws(experiment: Path, members_of: dict, prepared, config: dict,
               per_class: int | None = None) -> dict[str, dict]:
    """{trial: {class: images}}: every member of a pool (`pool_members`) drawn once at its kept
    checkpoint, found under `experiment` wherever the run's folder now lives."""
    draws: dict[str, dict] = {}
    for trial in (t for members in members_of.values() for t in members):
        if trial["trial"] not in draws:
            folder = _checkpoint(experiment, trial, trial["checkpoint"])
            draws[trial["trial"]] = checkpoint_draw(folder, prepared, config, per_class=per_class)
    return draws


def member_blend(members_of: dict, draws: dict, classes: list[str]):
    """(images, labels) as the farm blends a pool: each class's images in turn from each of its
    members' draws (`draws`: {trial: {class: images}})."""
    return stacked({c: interleaved([list(draws[t["trial"]][c]) for t in members_of[c]])
                    for c in classes}, classes)


def redrawn_pool(experiment: Path, summary: dict, dataset: str, name: str, prepared,
                 config: dict, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) of pool `name` with the members the farm would choose, each member's
    kept checkpoint drawn again at `per_class` images a class (under the run's judge filter):
    the same pool at another size, where the farm exports `synthetic_per_class`."""
    classes = list(prepared.images.classes)
    members_of = pool_members(summary, dataset, name, classes)
    return member_blend(members_of, kept_draws(experiment, members_of, prepared, config,
                                               per_class), classes)


def pool_images(experiment: Path, summary: dict | None, dataset: str, checkpoint: str | None,
                prepared, config: dict, judge_filter: int | None = None,
                pool: str | None = None,
                per_class: int | None = None) -> tuple[str, np.ndarray, np.ndarray]:
    """(what the pool is, images, labels): one checkpoint's draw, a blend of several
    (comma-separated), a pool built from the run's trials by name (drawn again at `per_class`
    a class when given), or the farm's chosen pool."""
    classes = list(prepared.images.classes)
    if pool and per_class:
        x, y = redrawn_pool(experiment, summary, dataset, pool, prepared, config, per_class)
        return f"pool {pool} redrawn at {per_class} a class", x, y
    if pool:
        x, y = built_pool(summary, dataset, pool, classes)
        return f"pool {pool} (built from the run's trials)", x, y
    if checkpoint:
        names = checkpoint.split(",")
        x, y = blended([checkpoint_draw(experiment / "tune" / name, prepared, config,
                                        judge_filter)
                        for name in names], classes)
        what = checkpoint if len(names) == 1 else f"blend of {checkpoint}"
        return what + (f", judge filter {judge_filter}" if judge_filter else ""), x, y
    section = summary["evaluator"]["datasets"][dataset]
    best = section["best_pool"]
    folder = experiment / "synthetic" / dataset / "pools" / best
    x, y = read_pool(folder, classes)
    return f"pool {best} (the farm's choice)", x, y


def run_evaluator(summary: dict, dataset: str) -> dict[int, tuple[float, float]]:
    """{classifier seed: (ceiling, noise control accuracy)} of the run's own evaluator."""
    section = summary["evaluator"]["datasets"][dataset]
    ceiling, control = section["ceiling"], section["control"]
    return {seed: (a, c) for seed, a, c in zip(ceiling["seeds"], ceiling["accuracies"],
                                                  control["accuracies"])}


def same_ceiling(seed: int, trained: float, run: float, what: str) -> None:
    """Stop unless the ceiling trained here is the run's for this seed: figures taken from the
    run (`what`) pair with this bench's only when the classifiers are the same."""
    if abs(run - trained) > 1e-9:
        raise SystemExit(f"seed {seed}: the ceiling {trained:.4f} is not the run's {run:.4f}: "
                         f"{what} would not pair with these figures")


def accuracy(model, task, test, classes: int, config, steps: int, started: float) -> float:
    record = tested(model, task, test, classes, config, torch.device("cpu"), steps, started)
    return scores(record["matrix"], range(classes))["accuracy"]


def summarise(acc: dict, seconds: dict, mixes: list[str], meta: dict) -> dict:
    """Each mix's gains, paired by seed, from the seeds trained so far; written to RESULTS after
    every seed, so a stopped run keeps what it measured (`seeds_done` says how much)."""
    figures = {}
    for mix in mixes:
        pool, noise = acc[f"{mix}/pool"], acc[f"{mix}/noise"]
        gain, noise_gain = paired_gain(pool, acc["ceiling"]), paired_gain(noise, acc["ceiling"])
        over = paired_gain(pool, noise)
        figures[mix] = {"pool": pool, "noise": noise, "gain": gain, "noise_gain": noise_gain,
                        "over_noise": over,
                        "verdict": verdict(gain, over, noise_gain),
                        "seconds": round(seconds[f"{mix}/pool"] + seconds[f"{mix}/noise"], 1)}
    result = {**meta, "seeds_done": len(acc["ceiling"]), "ceiling": acc["ceiling"],
              "mixes": figures}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--checkpoint", help="TRIAL/checkpoint_N under the run's tune folder, or "
                        "several, comma-separated, blended into every class (default: the "
                        "farm's chosen pool)")
    parser.add_argument("--judge-filter", type=int, help="with --checkpoint: draw N x and keep "
                        "the share the judge finds most like its class (default: the run's)")
    parser.add_argument("--pool", help="a pool the farm builds from the run's trials, by name "
                        "(e.g. all-blend), instead of the pool it chose")
    parser.add_argument("--per-class", type=int, help="with --pool: draw each member trial's "
                        "kept checkpoint again, this many images a class (the run exported "
                        "data.images.synthetic_per_class)")
    parser.add_argument("--control-from-run", action="store_true",
                        help="take each seed's noise control from the run's own evaluator "
                             "(same protocol, same noise images) instead of training it; the "
                             "ceiling trained here must equal the run's, seed for seed")
    parser.add_argument("--merge", type=Path, help="an earlier result of this bench on the same "
                        "pool and protocol whose seeds come first: its per-seed figures are "
                        "joined to these before the gains are paired")
    parser.add_argument("--mixes", default="extra,distill:1.0")
    parser.add_argument("--seeds", type=int, help="classifier seeds (default: the config's)")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="the first classifier seed (default: the config's): with --seeds, "
                             "adds seeds to a run's own (the noise images stay the config's)")
    parser.add_argument("--passes", type=int, help="passes over the real train split")
    parser.add_argument("--synthetic-batch", type=int,
                        help="synthetic images on top of each real batch (default: the config's)")
    parser.add_argument("--preset", help="take the evaluator settings from this preset")
    parser.add_argument("--data-dir")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.judge_filter and not args.checkpoint:
        raise SystemExit("--judge-filter draws checkpoints again: name them with --checkpoint")
    if args.per_class and not args.pool:
        raise SystemExit("--per-class draws a pool's members again: name the pool with --pool")
    if args.per_class and args.control_from_run:
        raise SystemExit("--per-class changes the pool's size, and the noise control's with it: "
                         "the run's own control would not match (drop --control-from-run)")
    summary_file = args.experiment / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else None
    prepared, config = prepared_dataset(args.experiment, args.dataset, args.data_dir)
    section = (load_config(REPO / "trials", args.preset) if args.preset else config)
    base = evaluator_config(section.get("evaluator"))
    if args.seeds:
        base = dataclasses.replace(base, seeds=args.seeds)
    if args.passes:
        base = dataclasses.replace(base, epochs=args.passes)
    if args.synthetic_batch:
        if args.control_from_run:
            raise SystemExit("--synthetic-batch changes how the noise control trains too: the "
                             "run's own control would not match (drop --control-from-run)")
        base = dataclasses.replace(base, synthetic_batch=args.synthetic_batch)
    noise_seed = base.seed  # the farm draws one set of noise images for every classifier seed
    if args.first_seed is not None:
        base = dataclasses.replace(base, seed=args.first_seed)
    real, test = real_and_test(prepared)
    classes = len(prepared.images.classes)
    what, x, y = pool_images(args.experiment, summary, args.dataset, args.checkpoint, prepared,
                             config, args.judge_filter, args.pool, args.per_class)
    mixes = args.mixes.split(",")
    tasks = {"pool": real_plus("real+synthetic", real, x, y)}
    run_figures = run_evaluator(summary, args.dataset) if args.control_from_run else None
    if run_figures is None:
        tasks["noise"] = noise_control(real, len(y), classes, noise_seed)
    commit = git_commit()
    meta = {"commit": commit, "experiment": args.experiment.name, "pool": what,
            "pool_images": int(len(y)), "protocol": base.describe(),
            "test_images": int(len(test.labels)), "seeds": base.seeds,
            "first_seed": base.seed}
    acc: dict[str, list[float]] = {"ceiling": []}
    seconds: dict[str, float] = {}
    if args.merge:
        earlier = json.loads(args.merge.read_text())
        if earlier["pool"] != what or earlier["protocol"].split(",")[:2] != \
                base.describe().split(",")[:2]:
            raise SystemExit(f"{args.merge}: another pool or protocol ({earlier['pool']})")
        acc["ceiling"] = list(earlier["ceiling"])
        for mix in mixes:
            for kind in ("pool", "noise"):
                acc[f"{mix}/{kind}"] = list(earlier["mixes"][mix][kind])
                seconds[f"{mix}/{kind}"] = 0.0
        meta["merged"] = f"seeds {earlier['first_seed']}-{earlier['first_seed'] + earlier['seeds_done'] - 1} from {args.merge.name}"
    for seed_config in seed_configs(base):
        started = time.perf_counter()
        teacher, steps = train_classifier(real, classes, seed_config, torch.device("cpu"),
                                          say=lambda _l: None, reference_images=len(real.labels))
        acc["ceiling"].append(accuracy(teacher, real, test, classes, seed_config, steps,
                                       started))
        print(f"seed {seed_config.seed}: ceiling {acc['ceiling'][-1]:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if run_figures is not None:
            ceiling, control = run_figures[seed_config.seed]
            same_ceiling(seed_config.seed, acc["ceiling"][-1], ceiling, "its noise control")
            for mix in mixes:
                acc.setdefault(f"{mix}/noise", []).append(control)
                seconds.setdefault(f"{mix}/noise", 0.0)
        for mix in mixes:
            config_mix = parse_mix(mix, seed_config)
            for kind, task in tasks.items():
                started = time.perf_counter()
                model, steps = train_classifier(task, classes, config_mix, torch.device("cpu"),
                                                say=lambda _l: None,
                                                reference_images=len(real.labels),
                                                teacher=teacher)
                key = f"{mix}/{kind}"
                acc.setdefault(key, []).append(
                    accuracy(model, task, test, classes, config_mix, steps, started))
                seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - started
                print(f"seed {seed_config.seed}: {key} {acc[key][-1]:.3f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
        result = summarise(acc, seconds, mixes, meta)
    figures = result["mixes"]

    def ci(g):
        return f" [{g['ci'][0]:+.3f}, {g['ci'][1]:+.3f}]" if g.get("ci") else ""

    lines = [f"# Evaluator mixes: {args.experiment.name}, {what} ({len(y)} images)", "",
             f"- protocol: {base.describe()}; {len(test.labels)} test images (one is "
             f"{1 / len(test.labels):.4f})",
             f"- ceiling: {np.mean(acc['ceiling']):.3f} "
             f"({' / '.join(f'{a:.3f}' for a in acc['ceiling'])})", "",
             "| mix | real + pool | gain | real + noise | noise gain | pool over noise | s |",
             "|---|---|---|---|---|---|---|"]
    for mix, f in figures.items():
        lines.append(f"| {mix} | {np.mean(f['pool']):.3f} | {f['gain']['mean']:+.3f}"
                     f"{ci(f['gain'])} | {np.mean(f['noise']):.3f} | "
                     f"{f['noise_gain']['mean']:+.3f}{ci(f['noise_gain'])} | "
                     f"{f['over_noise']['mean']:+.3f}{ci(f['over_noise'])} | {f['seconds']} |")
    lines += [""] + [f"- {mix}: {f['verdict']}" for mix, f in figures.items()]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
