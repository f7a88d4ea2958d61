"""How fast a grown generator samples (`Generator.sample`, what `run_farm.py sample` runs).

* tabular-a: rows a second, on each table (issue 20's target: 100,000 on 2 CPU cores);
* the conditional image model at 64 px: images a second (target: 200);
* tabular-b, apart: rows a second and forest-checked draws a second (each row is the best of
  `pick_best_of` draws the black box answers), with sklearn's forest (a generator built from
  an experiment) and with the forest as arrays (one loaded from a generator file); and the
  bare generator (one draw a row) beside them.

Without `--experiment` every generator has untrained weights at a preset's shapes (`--preset`,
default laptop; `--variant` picks each family's variant as `farm.config.plan` builds it), which costs
the same arithmetic as trained ones; the tables' decoding is fitted on the real table and
tabular-b's forest trained as the farm trains it. With `--experiment results/<name>` the
experiment's chosen trials are timed instead. Each figure is the best of `--repeats` calls
after one warm-up call, output in memory; writing the CSV or the PNGs is timed apart. Asserts
nothing about the numbers.

    .venv/bin/python bench/sample_speed.py [--experiment results/<name>] [--preset laptop]
        [--rows 100000] [--images 512] [--data-dir ../shared/data] [--out file.md]

Writes bench/results/sample-speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from common import emit
from speed import SHARED_DATA, command_line, git_commit, planned

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.load import load_config  # noqa: E402
from farm.data.images import write_image_folder  # noqa: E402
from farm.families.tabular_b import generate  # noqa: E402
from farm.sampling.generators import Generator, image_data, load_generator, table_data  # noqa: E402

RESULTS = REPO / "bench" / "results" / "sample-speed.json"
TARGETS = {"tabular_a_rows_per_second": 100_000, "conditional_images_per_second": 200}
VARIANTS = {"tabular-a": "stable", "tabular-b": "picked", "conditional": "tiny-data"}
TABLES = ("diabetes", "german_credit")
SIZE = 64


def best_of(repeats: int, fn) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeats` timed calls, after one warm-up call.
    The CPU seconds (every thread of this process) say what the call costs when the machine
    is shared: on two idle cores the wall time lies between CPU / 2 and CPU."""
    fn()
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times)


def preset_trial(config: dict, family: str, dataset: str, classes=()) -> dict:
    """The family's `VARIANTS` trial on `dataset` as `farm.config.plan` builds it from the preset."""
    section = {**config["families"][family], "search": {"variant": [VARIANTS[family]]},
               "samples": None}
    return planned({**config, "families": {**config["families"], family: section}}, family,
                   dataset, classes)[0]


def untrained(trial: dict, data: dict, forest=None) -> Generator:
    torch.manual_seed(0)
    about = {"trial": f"{trial['family']} ({trial['variant']}, untrained)",
             "family": trial["family"], "class": None, "dataset": trial["dataset"]}
    return Generator({"kind": trial["kind"], "params": trial["params"], "about": about,
                      "data": data}, None, forest)


def table_generators(args, config) -> dict[str, dict[str, Generator]]:
    """{table: {family: generator}}: the experiment's chosen ones, or untrained ones."""
    if args.experiment:
        import farm

        exp = farm.open_experiment(args.experiment, str(args.data_dir))
        found: dict[str, dict] = {}
        for trial in exp.summary["trials"]:
            if trial["family"] in ("tabular-a", "tabular-b") and trial.get("chosen"):
                found.setdefault(trial["dataset"], {})[trial["family"]] = exp.generator(
                    trial=trial["trial"])
        return found
    from farm.data.prepare_tables import attach_black_box, prepare_table

    found = {}
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp:
        for name in TABLES:
            path = args.data_dir / name / f"{name}.arff"
            prepared = prepare_table(name, path, None, config["data"], Path(tmp), 0)
            attach_black_box(prepared, 0)
            data = prepared.trial_data
            found[name] = {
                "tabular-a": untrained(preset_trial(config, "tabular-a", name),
                                       table_data(name, data.transformer, data.target)),
                "tabular-b": untrained(preset_trial(config, "tabular-b", name),
                                       table_data(name, data.transformer, data.target,
                                                  data.black_box), data.black_box.forest)}
    return found


def image_generator(args, config) -> Generator:
    if args.experiment:
        import farm

        return farm.open_experiment(args.experiment).generator(family="conditional")
    classes = [f"class{i:02d}" for i in range(30)]  # FIDS30's count; names do not matter
    trial = preset_trial(config, "conditional", "fids30", classes)
    return untrained(trial, image_data("fids30", classes, SIZE))


def of_family(generators: dict, family: str) -> list[tuple[str, Generator]]:
    """(table, generator) of one family, for the tables that have one."""
    return [(name, found[family]) for name, found in generators.items() if family in found]


def tabular_a(args, generators, lines, result) -> None:
    lines += ["## tabular-a: rows a second", "",
              "| table | encoded width | rows | rows / s | rows / CPU-s | rows / s with the CSV |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, generator in of_family(generators, "tabular-a"):
        seconds, cpu = best_of(args.repeats, lambda: generator.sample(args.rows, seed=1))
        frame = generator.sample(args.rows, seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            csv, _ = best_of(1, lambda: frame.to_csv(Path(tmp) / "rows.csv", index=False))
        width = generator.data.transformer.width
        result["tabular_a"][name] = {"rows": args.rows, "seconds": round(seconds, 4),
                                     "rows_per_second": round(args.rows / seconds),
                                     "rows_per_cpu_second": round(args.rows / cpu),
                                     "with_csv_rows_per_second": round(args.rows /
                                                                       (seconds + csv))}
        lines.append(f"| {name} | {width} | {args.rows} | {args.rows / seconds:,.0f} | "
                     f"{args.rows / cpu:,.0f} | {args.rows / (seconds + csv):,.0f} |")
    lines.append("")


def tabular_b(args, generators, lines, result, folder: Path) -> None:
    lines += ["## tabular-b: rows and forest-checked draws a second (apart)", "",
              "| table | forest | draws / row | rows | rows / s | forest-checked draws / s |",
              "|---|---|---:|---:|---:|---:|"]
    for name, generator in of_family(generators, "tabular-b"):
        from_file = load_generator(generator.save(folder / f"{name}-b.gen"))
        k = generator.params.pick_best_of
        rows = max(1, args.checked_draws // k)
        entry = result["tabular_b"][name] = {"pick_best_of": k, "rows": rows}
        for label, which in (("sklearn (from an experiment)", generator),
                             ("arrays (from a file)", from_file)):
            seconds, _ = best_of(args.repeats, lambda: which.sample(rows, seed=1))
            key = "sklearn" if label.startswith("sklearn") else "arrays"
            entry[key] = {"rows_per_second": round(rows / seconds, 1),
                          "draws_per_second": round(rows * k / seconds)}
            lines.append(f"| {name} | {label} | {k} | {rows} | {rows / seconds:,.0f} | "
                         f"{rows * k / seconds:,.0f} |")
        requested = np.linspace(0, 1, args.rows)
        seconds, _ = best_of(args.repeats, lambda: generate(generator.module, generator.params,
                                                            generator.data, requested, 1,
                                                            best_of=1))
        entry["one_draw_rows_per_second"] = round(args.rows / seconds)
        lines.append(f"| {name} | sklearn, one draw a row | 1 | {args.rows} | "
                     f"{args.rows / seconds:,.0f} | {args.rows / seconds:,.0f} |")
    lines.append("")


def conditional(args, generator, lines, result) -> None:
    classes = list(generator.classes)[:4]
    per_class = max(1, args.images // len(classes))
    total = per_class * len(classes)
    seconds, cpu = best_of(args.repeats, lambda: generator.sample(per_class, seed=1,
                                                                  classes=classes))
    images, labels = generator.sample(per_class, seed=1, classes=classes)
    by_class = {c: images[labels == c] for c in classes}
    with tempfile.TemporaryDirectory() as tmp:
        png, _ = best_of(1, lambda: write_image_folder(by_class, Path(tmp) / "images"))
    params = generator.params
    result["conditional"] = {"g_width": params.g_width, "z_dim": params.z_dim, "size": SIZE,
                             "images": total, "seconds": round(seconds, 3),
                             "images_per_second": round(total / seconds, 1),
                             "images_per_cpu_second": round(total / cpu, 1),
                             "with_png_images_per_second": round(total / (seconds + png), 1)}
    lines += ["## conditional: images a second at 64 px", "",
              f"G at width {params.g_width} (z {params.z_dim}), {len(generator.classes)} "
              f"classes, {per_class} images of each of {len(classes)}.", "",
              "| images | images / s | images / CPU-s | images / s with the PNG folder |",
              "|---:|---:|---:|---:|",
              f"| {total} | {total / seconds:,.0f} | {total / cpu:,.0f} | "
              f"{total / (seconds + png):,.0f} |", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", help="time this experiment's chosen trials instead")
    parser.add_argument("--preset", default="laptop", help="shapes of the untrained generators")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per tabular-a call")
    parser.add_argument("--images", type=int, default=512, help="images per conditional call")
    parser.add_argument("--checked-draws", type=int, default=128_000,
                        help="forest-checked draws per tabular-b call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (default 0: torch's own, one per core); on a machine "
                             "that other work keeps busy, 1 avoids threads waiting on each other")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(REPO / "trials", args.preset)
    variants = ", ".join(f"{f} {v}" for f, v in VARIANTS.items())
    source = (f"the chosen trials of {args.experiment}" if args.experiment else
              f"untrained weights at preset `{args.preset}`'s shapes ({variants}): no "
              "experiment given")
    load = os.getloadavg()[0]
    result = {"commit": git_commit(), "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}",
              "source": source, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": round(load, 2), "targets": TARGETS,
              "tabular_a": {}, "tabular_b": {}}
    lines = ["# Sampling speed", "", f"- Command: `{command_line()}`",
             f"- Date: {result['date']} UTC; repository at {result['commit']}",
             f"- Machine: {os.cpu_count()} CPUs, torch {torch.__version__} with "
             f"{torch.get_num_threads()} thread(s), python {platform.python_version()}; load "
             f"average {load:.2f} when it started (other work on the machine slows every "
             "figure)",
             f"- Generators: {source}", ""]
    tables = table_generators(args, config)
    tabular_a(args, tables, lines, result)
    with tempfile.TemporaryDirectory() as tmp:
        tabular_b(args, tables, lines, result, Path(tmp))
    conditional(args, image_generator(args, config), lines, result)
    a = min(v["rows_per_second"] for v in result["tabular_a"].values())
    c = result["conditional"]["images_per_second"]
    lines += [f"Targets: tabular-a >= {TARGETS['tabular_a_rows_per_second']:,} rows/s: "
              f"{'met' if a >= TARGETS['tabular_a_rows_per_second'] else 'NOT met'} "
              f"(slowest table {a:,.0f}); conditional >= "
              f"{TARGETS['conditional_images_per_second']} images/s: "
              f"{'met' if c >= TARGETS['conditional_images_per_second'] else 'NOT met'} "
              f"({c:,.0f})."]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
