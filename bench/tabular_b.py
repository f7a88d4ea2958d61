"""Part B benchmark: how well each tabular-b variant links the requested confidence to the black
box's answer, on both datasets over several split seeds.

For every seed it runs the real command (`run_farm.py --only tabular-b`), then re-scores each
trial's chosen checkpoint with FRESH noise (the epoch was picked on the confidence error of other
samples, so this is not the number that selected it): confidence error on the even grid,
coverage of the ten bins, detection AUC against the held-out real test rows, distance to the
closest real train row and exact copies, and the trial's training time. Prints a markdown table
(mean ± std over seeds) per dataset and variant, and each seed's detection AUC below it.

    .venv/bin/python bench/tabular_b.py --preset full --seeds 0 1 2 --out /tmp/tabular_b.md

`--variants picked anchored`, `--epochs N` and `--datasets german_credit` run a copy of trials/
whose preset narrows tabular-b to those variants (that many epochs, those tables), so a longer
run can leave some out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from farm.config.family_params import params_from  # noqa: E402
from farm.config.load import load_config  # noqa: E402
from farm.data.prepare_tables import attach_black_box, prepare_table  # noqa: E402
from farm.families.tabular_b import confidence_metrics  # noqa: E402
from farm.metrics.tabular import detection_auc, distance_to_closest_record  # noqa: E402
from farm.pipeline.export import sample_from_checkpoint  # noqa: E402

FRESH_SEED = 987_654
SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
COLUMNS = (("confidence/error", "conf. error", "{:.3f}"),
           ("confidence/error_single_draw", "error, 1 draw", "{:.3f}"), ("confidence/coverage", "coverage /10", "{:.1f}"),
           ("detection_auc", "detection AUC", "{:.3f}"), ("dcr/median", "DCR median", "{:.3f}"),
           ("dcr/exact_copies", "exact copies", "{:.1%}"), ("train_seconds", "train s", "{:.0f}"),
           ("best_epoch", "best epoch", "{:.0f}"))


DATASETS = ["german_credit", "diabetes"]


def narrowed_trials(preset: str, variants: list[str] | None, epochs: int | None,
                    datasets: list[str], where: Path) -> Path:
    """A copy of trials/ with preset `bench-b`: `preset`, tabular-b narrowed as asked."""
    trials = Path(shutil.copytree(REPO / "trials", where / "trials"))
    text = yaml.safe_load((trials / "presets" / f"{preset}.yaml").read_text())
    family = text.setdefault("families", {}).setdefault("tabular-b", {})
    if variants:
        family["search"] = {"variant": variants}
    if epochs:
        family["epochs"] = epochs
    family["datasets"] = list(datasets)  # no trial grows a table the benchmark leaves out
    (trials / "presets" / "bench-b.yaml").write_text(yaml.safe_dump(text))
    return trials


def run_farm(trials: Path, preset: str, seed: int, data_dir: Path, storage: Path,
             datasets: list[str]) -> dict:
    name = f"bench-b-{seed}"
    cmd = [sys.executable, str(REPO / "run_farm.py"), "--trials-dir", str(trials),
           "--preset", preset, "--only", "tabular-b",
           "--seed", str(seed), "--data-dir", str(data_dir), "--storage-path", str(storage),
           "--name", name]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((storage / name / "summary.json").read_text())
    summary["trials"] = [t for t in summary["trials"] if t["dataset"] in datasets]
    return summary


def rescore(trial: dict, prepared, storage_dir: Path) -> dict:
    spec = {"kind": "tabular-b", "params": trial["params"], "seed": trial["seed"]}
    params = params_from("tabular-b", trial["params"])
    data = prepared.trial_data
    generator, synthetic = sample_from_checkpoint(spec, trial["checkpoint"], prepared.trial_data,
                                                  len(prepared.split.train))
    scores = confidence_metrics(generator, params, data, FRESH_SEED)
    scores.setdefault("confidence/error_single_draw", scores["confidence/error"])  # K = 1 anyway
    synth_enc = data.transformer.transform(synthetic)
    test_enc = data.transformer.transform(prepared.test_frame())
    train_enc = data.transformer.transform(prepared.train_frame())
    scores["detection_auc"] = detection_auc(test_enc, synth_enc, seed=FRESH_SEED)
    dcr = distance_to_closest_record(train_enc, synth_enc, seed=FRESH_SEED)
    scores.update({k: dcr[k] for k in ("dcr/median", "dcr/exact_copies")})
    result = storage_dir / "tune" / trial["trial"] / "result.json"
    last = json.loads(result.read_text().strip().splitlines()[-1])
    scores["train_seconds"] = float(last["time_total_s"])
    scores["best_epoch"] = float(trial["best_epoch"])
    return scores


def variant_of(trial: dict) -> str:
    return next((part.split("=", 1)[1] for part in trial["setting"].split(",")
                 if part.startswith("variant=")), trial["setting"])


def table(rows: dict, dataset: str) -> str:
    head = "| variant | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    lines = [f"**{dataset}**", "", head, "|---|" + "---:|" * len(COLUMNS)]
    for variant, runs in rows.items():
        cells = []
        for key, _, fmt in COLUMNS:
            values = np.array([r[key] for r in runs], dtype=float)
            std = values.std(ddof=1) if len(values) > 1 else 0.0
            cells.append(f"{fmt.format(values.mean())} ± {fmt.format(std)}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    lines.append("")
    for variant, runs in rows.items():  # a target met on the mean may be missed by one seed
        per_seed = ", ".join(f"{r['detection_auc']:.3f}" for r in runs)
        lines.append(f"- {variant}: detection AUC per seed {per_seed}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=DATASETS)
    parser.add_argument("--data-dir", type=Path, default=SHARED_DATA)
    parser.add_argument("--variants", nargs="+", help="tabular-b variants to run (default: the preset's)")
    parser.add_argument("--epochs", type=int, help="tabular-b epochs (default: the preset's)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    data_cfg = load_config(REPO / "trials", args.preset)["data"]
    started = time.time()
    results: dict[str, dict[str, list]] = {d: {} for d in args.datasets}
    with tempfile.TemporaryDirectory(prefix="bench-b-") as tmp:
        storage = Path(tmp)
        trials, preset = REPO / "trials", args.preset
        if args.variants or args.epochs or args.datasets != DATASETS:
            trials = narrowed_trials(args.preset, args.variants, args.epochs, args.datasets,
                                     storage)
            preset = "bench-b"
        for seed in args.seeds:
            summary = run_farm(trials, preset, seed, args.data_dir, storage, args.datasets)
            prepared = {}
            for trial in summary["trials"]:
                dataset = trial["dataset"]
                if dataset not in prepared:
                    path = args.data_dir / dataset / f"{dataset}.arff"
                    prepared[dataset] = prepare_table(dataset, path, None, data_cfg,
                                                      storage / f"bench-b-{seed}", seed)
                    attach_black_box(prepared[dataset], seed)
                if trial["status"] != "ok":
                    print(f"seed {seed}: {trial['trial']} failed: {trial['error']}")
                    continue
                scores = rescore(trial, prepared[dataset], storage / f"bench-b-{seed}")
                results[dataset].setdefault(variant_of(trial), []).append(scores)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    header = [f"# tabular-b benchmark, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", "",
              f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`", "",
              f"Device: {cpu}, {os.cpu_count()} cores (CPU only). Seeds {args.seeds}, preset "
              f"{args.preset}{' narrowed to ' + ' '.join(args.variants) if args.variants else ''}"
              f"{f', {args.epochs} epochs' if args.epochs else ''}. Wall time {time.time() - started:.0f} s. Scores from each trial's "
              "chosen checkpoint with fresh noise; detection against the real test rows.", ""]
    text = "\n".join(header + [table(results[d], d) + "\n" for d in args.datasets])
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
