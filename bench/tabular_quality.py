#!/usr/bin/env python3
"""Tabular quality benchmark: the farm (tabular-a GAN and tabular-forest) vs CTGAN, TVAE, SMOTE, Forest-Flow.

A benchmark, not a test: it prints figures (markdown) and asserts nothing about them.

Install (once; from the repository root, after `make farm` created .venv). The benchmark's
own virtualenv sees every package of .venv through a .pth file, and pip is constrained to the
versions .venv already has, so torch, pandas, numpy, scikit-learn... stay exactly as pinned in
requirements.txt (it adds ctgan, rdt, Faker, tqdm and nothing else):

    .venv/bin/python -m venv .venv-bench
    echo "$PWD/.venv/lib/python3.11/site-packages" > .venv-bench/lib/python3.11/site-packages/_gan_farm_venv.pth
    .venv/bin/pip freeze > /tmp/farm-constraints.txt
    .venv-bench/bin/pip install -r bench/requirements.txt -c /tmp/farm-constraints.txt

Run:

    .venv-bench/bin/python bench/tabular_quality.py --quick              # smoke check, minutes
    .venv-bench/bin/python bench/tabular_quality.py --preset smoke --seeds 0 1 2
    .venv-bench/bin/python bench/tabular_quality.py --out bench/tabular_quality.md   # preset full

What it does, per dataset and split seed (every method is scored by the same code):

* the split is the farm's own (`farm.data.prepare_tables.prepare_table`, the same data settings and seed as
  the farm run; it is read back from the run's `splits/<dataset>.json` and checked against a
  fresh one);
* TRTR: the seeds' random forest trained on the real train rows (fit + val), tested on the
  real test split (`farm.evaluation.table_scores.trtr`);
* the farm: the real command, `run_farm.py --preset P --only tabular-a,tabular-forest --seed
  S ...` (`--families`), in a subprocess; per dataset the ONE trial with the highest
  `select/score` over every family run (the farm's own selection metric, computed without the
  test split: the farm's choice among generator kinds) and its synthetic CSV;
* the peers (bench/tabular_peers.py, `--peers`): CTGAN and TVAE (the `ctgan` package) with
  their default settings, `discrete_columns` = the nominal columns (target included), seeded
  with `set_random_state(seed)`; SMOTE as a generator (the farm's own baseline); Forest-Flow
  (`ForestDiffusion`, `--forest-flow-nt`, `--forest-flow-k`); all fitted on the real train rows
  (fit + val; the farm's GAN trains on `fit` only and uses `val` to pick epochs and trials), as
  many rows sampled as the train split;
* for every synthetic frame: TSTR accuracy/AUC (`farm.evaluation.table_scores.tstr`), its ratio to TRTR AUC,
  detection AUC against the real TEST rows (`farm.metrics.tabular.detection_auc`, both sides
  encoded with the trial's transformer), DCR median and exact-copy share against the real
  TRAIN rows (`farm.metrics.tabular.distance_to_closest_record`), and that median over the
  test rows' own (`dcr_ratio`: 1 = as far from the train rows as fresh rows);
* TSTR AUC with XGBoost at its defaults beside the random forest (TabDDPM and TabSyn report
  a gradient-boosted classifier), and the field's scores (farm/metrics/field.py, the ones every
  run's report shows): column shapes, column pair trends, synthcity's XGBoost detection against
  the train rows, TabSyn's DCR share with the test rows as holdout.

`--skip-farm` scores the peers alone on the same splits (the split is a function of the seed).
Writes bench/results/tabular-quality.json: one record per dataset, split seed and method.

Progress goes to stderr; the report goes to stdout (and to --out).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from common import git_commit, host_cpu

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from farm.config.load import load_config  # noqa: E402
from farm.data.fetch import resolve_dataset  # noqa: E402
from farm.data.prepare_tables import PreparedTable, prepare_table  # noqa: E402
from farm.data.registry import get_source  # noqa: E402
from farm.evaluation.table_scores import field_scores, trtr, tstr  # noqa: E402
from farm.metrics.tabular import detection_auc, distance_to_closest_record  # noqa: E402
from tabular_peers import PEERS, duplicate_ks  # noqa: E402
from tabular_peers import fit as fit_peer  # noqa: E402

FAMILIES = ("tabular-a", "tabular-forest")  # the farm's kinds whose trials compare by SELECT
SELECT = "select/score"
SHARED_DATA = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
METHODS = ("real (TRTR)", "farm", *PEERS)
RESULTS = REPO / "bench" / "results" / "tabular-quality.json"
METRICS = (  # key, column title, format
    ("tstr_acc", "TSTR acc", "{:.3f}"),
    ("tstr_auc", "TSTR AUC", "{:.3f}"),
    ("auc_ratio", "AUC / TRTR", "{:.3f}"),
    ("tstr_auc_xgb", "TSTR AUC (XGBoost)", "{:.3f}"),
    ("detection", "detection AUC", "{:.3f}"),
    ("detection_xgb", "detection (XGBoost, train)", "{:.3f}"),
    ("column_shapes", "column shapes", "{:.3f}"),
    ("column_pair_trends", "pair trends", "{:.3f}"),
    ("dcr_median", "DCR median", "{:.3f}"),
    ("dcr_ratio", "DCR / holdout's", "{:.2f}"),
    ("dcr_share", "DCR share", "{:.3f}"),
    ("exact_copies", "exact copies", "{:.1%}"),
    ("seconds", "wall s", "{:.0f}"),
)


def say(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- header


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def farm_fingerprint() -> str:
    """A hash of the farm's code and trial configuration: the farm is edited while benchmarks
    run, so the report says which farm it measured and whether it changed during the run."""
    digest = hashlib.sha256()
    files = [REPO / "run_farm.py", *sorted((REPO / "farm").rglob("*.py")),
             *sorted((REPO / "trials").rglob("*.yaml"))]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


def family_line(preset: str, families) -> str:
    lines = []
    for name in families:
        family = dict(load_config(REPO / "trials", preset)["families"][name])
        shown = {k: family[k] for k in ("epochs", "eval_every", "search", "variants", "params",
                                        "per_dataset", "seeds") if k in family}
        lines.append(f"- `{name}` under preset `{preset}`: `{json.dumps(shown, default=str)}`")
    return "\n".join(lines)


def header(args, command: str, fingerprint: str) -> list[str]:
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU only)"
    except Exception as exc:  # noqa: BLE001 - the header must not kill the benchmark
        gpu = f"unknown ({exc})"
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    versions = ", ".join(f"{p} {_version(p)}" for p in
                         ("torch", "ray", "ctgan", "rdt", "pandas", "numpy", "scikit-learn"))
    return [
        "# Tabular quality: farm vs CTGAN vs TVAE",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- device: {host_cpu()}, {cores} cores ({usable} usable), load average at start "
        f"{load}; GPU: {gpu}",
        f"- python {platform.python_version()}; {versions}",
        f"- repository: {REPO} at {git_commit()}; farm code + trials fingerprint "
        f"`{fingerprint}` at start",
        family_line(args.preset, args.families),
        f"- farm preset `{args.preset}` ({', '.join(args.families)}), split seeds {' '.join(map(str, args.seeds))}, "
        f"datasets {', '.join(args.datasets)}; peers: "
        + ("skipped" if not args.peers else
           f"{', '.join(args.peers)} (ctgan defaults, epochs "
           f"{args.ctgan_epochs if args.ctgan_epochs else 'package default (300)'}; Forest-Flow "
           f"n_t {args.forest_flow_nt}, duplicate_K {args.forest_flow_k}, "
           f"max_bin {args.forest_flow_bins}, n_jobs {args.forest_flow_jobs})")
        + ("; the farm not run (--skip-farm)" if args.skip_farm else ""),
    ]


# --------------------------------------------------------------------------- data


def data_config(preset: str) -> dict:
    return load_config(REPO / "trials", preset)["data"]


def prepare(name: str, data_dir: str | None, data_cfg: dict, experiment_dir: Path,
            seed: int) -> PreparedTable:
    """Exactly what a farm run does for a registry dataset (farm.data.prepare_tables.prepare_tables)."""
    path = resolve_dataset(name, data_dir)
    return prepare_table(name, path, get_source(name).target, data_cfg, experiment_dir, seed)


def same_split(a: PreparedTable, b: PreparedTable) -> bool:
    return (tuple(a.split.fit), tuple(a.split.val), tuple(a.split.test)) == \
        (tuple(b.split.fit), tuple(b.split.val), tuple(b.split.test))


def as_table_dtypes(frame: pd.DataFrame, prepared: PreparedTable) -> pd.DataFrame:
    """The synthetic rows with the real table's columns, order and dtypes."""
    table = prepared.table
    names = [c.name for c in table.columns]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"synthetic rows lack columns {missing}")
    out = {}
    for col in table.columns:
        values = frame[col.name]
        if col.kind == "numeric":
            values = pd.to_numeric(values)
        out[col.name] = values.astype(table.frame[col.name].dtype)
    return pd.DataFrame(out)[names]


def load_synthetic_csv(path: str | Path, prepared: PreparedTable) -> pd.DataFrame:
    # As text first ('none' and 'NA' are categories, not missing values), then the table's dtypes.
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return as_table_dtypes(raw, prepared)


# --------------------------------------------------------------------------- metrics


def minority_share(frame: pd.DataFrame, prepared: PreparedTable) -> float:
    """Share of the real train rows' rarest class among `frame`'s labels (a collapsed
    generator that emits one class gets TSTR AUC 0.5)."""
    target = prepared.table.target
    rarest = prepared.train_frame()[target].astype(str).value_counts().idxmin()
    return float((frame[target].astype(str) == rarest).mean())


def xgb_auc(train_X, train_y, prepared: PreparedTable, seed: int) -> float:
    """TSTR (or TRTR) with XGBoost at its defaults, one thread: the AUC of the positive class on
    the real test rows (binary targets: both tables here)."""
    from sklearn.metrics import roc_auc_score
    from xgboost import XGBClassifier

    test_X, test_y = prepared.test_xy
    classes = sorted(set(map(str, test_y)))
    y = np.array([classes.index(str(v)) if str(v) in classes else 0 for v in train_y])
    if len(set(y)) < 2:
        return 0.5
    model = XGBClassifier(n_jobs=1, verbosity=0, random_state=seed).fit(train_X, y)
    truth = np.array([classes.index(str(v)) for v in test_y])
    return float(roc_auc_score(truth == 1, model.predict_proba(test_X)[:, 1]))


def score(synthetic: pd.DataFrame, prepared: PreparedTable, seed: int, trtr_auc: float,
          holdout_dcr: float) -> dict:
    """The same measurements for every method's synthetic rows; `holdout_dcr` is the real test
    rows' median distance to the train rows (what fresh rows score)."""
    with threadpool_limits(limits=1):  # see score_real
        scores = _score(synthetic, prepared, seed, trtr_auc)
    scores["dcr_ratio"] = scores["dcr_median"] / holdout_dcr
    return scores


def _score(synthetic, prepared, seed, trtr_auc):
    transform = prepared.trial_data.transformer.transform
    real_train = transform(prepared.train_frame())
    real_test = transform(prepared.test_frame())
    synth = transform(synthetic)
    t = tstr(synthetic, prepared, seed)
    dcr = distance_to_closest_record(real_train, synth, seed)
    field = field_scores(synthetic, prepared, seed)
    return {"minority": minority_share(synthetic, prepared),
            "tstr_acc": t["accuracy"], "tstr_auc": t["auc"], "auc_ratio": t["auc"] / trtr_auc,
            "tstr_auc_xgb": xgb_auc(*prepared.encode_xy(synthetic), prepared, seed),
            "detection_xgb": field["detection_xgb"], "dcr_share": field["dcr_share"],
            "column_shapes": field["column_shapes"],
            "column_pair_trends": field["column_pair_trends"],
            "detection": detection_auc(real_test, synth, seed),
            "dcr_median": dcr["dcr/median"], "exact_copies": dcr["dcr/exact_copies"],
            "dcr_real_median": dcr["dcr/real_median"],
            "out_of_range": float(((synth < -1e-9) | (synth > 1 + 1e-9)).any(axis=1).mean())}


def score_real(prepared: PreparedTable, seed: int) -> dict:
    """The reference row: TRTR, and what fresh REAL rows (the test split) score on the same
    detection/DCR measures (detection: real train vs real test; DCR: test rows to train rows).

    Scoring runs with one OpenMP/BLAS thread: after torch has trained in this process, two
    OpenMP runtimes (torch's and scikit-learn's) on a busy 2-core machine made the detection
    classifier 10-100x slower; the figures are the same either way."""
    with threadpool_limits(limits=1):
        return _score_real(prepared, seed)


def _score_real(prepared, seed):
    transform = prepared.trial_data.transformer.transform
    real_train = transform(prepared.train_frame())
    real_test = transform(prepared.test_frame())
    started = time.time()
    t = trtr(prepared, seed)
    seconds = time.time() - started
    dcr = distance_to_closest_record(real_train, real_test, seed)
    return {"minority": minority_share(prepared.train_frame(), prepared),
            "tstr_acc": t["accuracy"], "tstr_auc": t["auc"], "auc_ratio": 1.0,
            "tstr_auc_xgb": xgb_auc(*prepared.train_xy, prepared, seed),
            "detection": detection_auc(real_test, real_train, seed),
            "dcr_median": dcr["dcr/median"], "exact_copies": dcr["dcr/exact_copies"],
            "dcr_real_median": dcr["dcr/real_median"], "seconds": seconds, "dcr_ratio": 1.0}


# --------------------------------------------------------------------------- methods


def run_farm(args, seed: int, storage: Path) -> tuple[dict, float]:
    name = f"bench-{seed}"
    cmd = [args.farm_python, str(REPO / "run_farm.py"), "--preset", args.preset, "--only", ",".join(args.families),
           "--seed", str(seed), "--storage-path", str(storage), "--name", name]
    if args.data_dir:
        cmd[cmd.index("--storage-path"):cmd.index("--storage-path")] = ["--data-dir", args.data_dir]
    log = storage / f"{name}.log"
    say(f"seed {seed}: farm: {shlex.join(cmd)} (log {log})")
    started = time.time()
    with open(log, "w") as handle:
        proc = subprocess.run(cmd, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT)
    seconds = time.time() - started
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise SystemExit(f"the farm run failed (exit {proc.returncode}) after {seconds:.0f} s; "
                         f"log {log}; its tail:\n{tail}")
    summary = json.loads((storage / name / "summary.json").read_text())
    say(f"seed {seed}: farm done in {seconds:.0f} s ({len(summary['trials'])} trials)")
    return summary, seconds


def pick_farm_trial(summary: dict, dataset: str) -> dict | None:
    """The farm's best trial by its own selection metric (never by anything on the test split)."""
    def select(trial):
        value = (trial.get("metrics") or {}).get(SELECT)
        return float(value) if value is not None and math.isfinite(float(value)) else -math.inf

    candidates = [t for t in summary["trials"] if t["dataset"] == dataset and t["status"] == "ok"
                  and t.get("synthetic_csv") and select(t) > -math.inf]
    return max(candidates, key=select) if candidates else None


# --------------------------------------------------------------------------- report


def mean_std(values: list[float], fmt: str) -> str:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def dataset_table(dataset: str, results: dict, info: dict) -> list[str]:
    cols = [title for _, title, _ in METRICS]
    lines = [f"## {dataset}", "", info["line"], "",
             "| method | " + " | ".join(cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for method in METHODS:
        runs = results.get(method, [])
        if not runs:
            continue
        cells = [mean_std([r.get(key) for r in runs], fmt) for key, _, fmt in METRICS]
        label = method + (" *" if method.startswith("real") else "")
        if method.startswith("farm"):
            cells[-1] += " †"
        lines.append(f"| {label} (n={len(runs)}) | " + " | ".join(cells) + " |")
    real = results.get(METHODS[0], [])
    lines += ["", f"DCR scale: median distance between two halves of the real train rows "
              f"{mean_std([r['dcr_real_median'] for r in real], '{:.3f}')}."]
    return lines


def per_seed_table(rows: list[dict]) -> list[str]:
    lines = ["| dataset | seed | method | minority class | TSTR acc | TSTR AUC | detection "
             "| DCR median | copies | rows out of range | wall s | farm trial (select/score, best epoch) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        m = r["scores"]
        oor = f"{m['out_of_range']:.1%}" if "out_of_range" in m else ""
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['method']} | {m['minority']:.1%} | "
                     f"{m['tstr_acc']:.3f} | "
                     f"{m['tstr_auc']:.3f} | {m['detection']:.3f} | {m['dcr_median']:.3f} | "
                     f"{m['exact_copies']:.1%} | {oor} | {m['seconds']:.1f} | {r.get('detail', '')} |")
    return lines


def write_json(rows: list[dict], args, command: str) -> None:
    """bench/results/tabular-quality.json: one record per dataset, split seed and method (the
    farm's `method` is "farm", real data's "real")."""
    names = {METHODS[0]: "real", METHODS[1]: "farm"}
    keys = ("auc_ratio", "detection", "exact_copies", "dcr_ratio", "seconds", "tstr_auc",
            "tstr_auc_xgb", "detection_xgb", "dcr_share", "column_shapes", "column_pair_trends")
    records = [{"method": names.get(r["method"], r["method"]), "dataset": r["dataset"],
                "seed": r["seed"], **{k: r["scores"].get(k) for k in keys}} for r in rows]
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"commit": git_commit(), "command": command,
                               "preset": None if args.skip_farm else args.preset,
                               "forest_flow": {"n_t": args.forest_flow_nt,
                                               "duplicate_K": args.forest_flow_k,
                                               "max_bin": args.forest_flow_bins,
                                               "n_jobs": args.forest_flow_jobs},
                               "records": records}, indent=2))
    say(f"wrote {out}")


# --------------------------------------------------------------------------- main


def parse_args(argv):
    default_data = str(SHARED_DATA) if SHARED_DATA.is_dir() else None
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="split seeds (0 1 2)")
    p.add_argument("--datasets", nargs="+", default=["german_credit", "diabetes"])
    p.add_argument("--preset", default="full", help="the farm preset (default full)")
    p.add_argument("--families", type=lambda v: tuple(v.split(",")), default=FAMILIES,
                   help=f"the farm's families to run and choose among, comma-separated (default "
                        f"{','.join(FAMILIES)})")
    p.add_argument("--data-dir", default=default_data,
                   help=f"datasets root (default {default_data or 'the farm lookup: cache/download'})")
    p.add_argument("--ctgan-epochs", type=int, default=None,
                   help="epochs of CTGAN and TVAE (default: the package default, 300)")
    p.add_argument("--skip-peers", action="store_true", help="no peers (same as --peers '')")
    p.add_argument("--peers", default=",".join(PEERS),
                   help=f"comma-separated peers to fit (default {','.join(PEERS)})")
    p.add_argument("--skip-farm", action="store_true",
                   help="score the peers alone (the splits are the farm's for the same seeds)")
    p.add_argument("--forest-flow-nt", type=int, default=50,
                   help="Forest-Flow's noise levels (its default 50)")
    p.add_argument("--forest-flow-k", type=duplicate_ks, default={"*": 100},
                   help="Forest-Flow's duplicate_K (its default 100; time scales with it): one "
                        "number, or per dataset, e.g. 'diabetes=100,german_credit=20'")
    p.add_argument("--forest-flow-bins", type=int, default=256,
                   help="XGBoost's max_bin inside Forest-Flow (its default 256); a round's cost "
                        "grows with bins x encoded columns")
    p.add_argument("--forest-flow-jobs", type=int, default=1,
                   help="Forest-Flow's n_jobs (default 1; more fits a model per column: "
                        "another algorithm in ForestDiffusion 1.0.6, not only a faster one)")
    p.add_argument("--quick", action="store_true",
                   help="smoke check of this script: preset smoke, the first seed, peers 5 epochs")
    p.add_argument("--out", help="also write the report (markdown) to this file")
    p.add_argument("--json", default=str(RESULTS),
                   help="where the headline figures go (default bench/results/tabular-quality.json;"
                        " a run per dataset with its own Forest-Flow settings takes its own file)")
    p.add_argument("--keep", action="store_true", help="keep the farm runs' folders")
    p.add_argument("--farm-python", default=str(REPO / ".venv" / "bin" / "python"),
                   help="interpreter for run_farm.py (default: the project's .venv)")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.seeds, args.ctgan_epochs = "smoke", args.seeds[:1], 5
        args.forest_flow_nt, args.forest_flow_k = 5, {"*": 2}
    args.peers = [] if args.skip_peers else [k for k in args.peers.split(",") if k]
    unknown = sorted(set(args.peers) - set(PEERS))
    if unknown:
        p.error(f"unknown peer(s) {', '.join(unknown)}: choose from {', '.join(PEERS)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    needs = {"CTGAN": "ctgan", "TVAE": "ctgan", "Forest-Flow": "ForestDiffusion"}
    for kind in args.peers:
        try:
            __import__(needs.get(kind, "imblearn"))
        except ImportError:
            raise SystemExit(f"{kind}'s package is not installed in this interpreter: install "
                             ".venv-bench as bench/README.md says, or leave it out of --peers")
    fingerprint = farm_fingerprint()
    lines = header(args, command, fingerprint)
    data_cfg = data_config(args.preset)
    methods_run = [METHODS[0]] + ([] if args.skip_farm else [METHODS[1]]) + args.peers

    results = {d: {m: [] for m in methods_run} for d in args.datasets}
    info = {}
    rows, notes, farm_seconds = [], set(), {}
    started = time.time()
    for seed in args.seeds:
        storage = Path(tempfile.mkdtemp(prefix=f"bench-tabq-{seed}-"))
        try:
            if args.skip_farm:
                summary, experiment_dir = None, storage / "split"
            else:
                summary, farm_seconds[seed] = run_farm(args, seed, storage)
                experiment_dir = Path(summary["experiment_dir"])
            now = farm_fingerprint()
            if now != fingerprint:
                notes.add(f"WARNING: the farm's code or trials/ changed while the benchmark ran "
                          f"(fingerprint {fingerprint} -> {now}, noticed after the seed {seed} "
                          "farm run): the seeds may have measured different farms")
                say(f"seed {seed}: farm sources changed ({fingerprint} -> {now})")
                fingerprint = now
            for dataset in args.datasets:
                # The farm run's own split manifest, and a fresh split: they must agree.
                prepared = prepare(dataset, args.data_dir, data_cfg, experiment_dir, seed)
                fresh = prepare(dataset, args.data_dir, data_cfg, storage / "fresh", seed)
                if not same_split(prepared, fresh):
                    raise SystemExit(f"{dataset} seed {seed}: the farm's split differs from "
                                     "prepare_table's: not comparable")
                s = prepared.split
                info.setdefault(dataset, {"line": (
                    f"{len(prepared.table.frame)} rows: train {len(s.train)} (fit {len(s.fit)} + "
                    f"val {len(s.val)}), test {len(s.test)}; target `{prepared.table.target}`; "
                    f"{len(prepared.table.nominal)} nominal / {len(prepared.table.numeric)} "
                    "numeric columns.")})

                real = score_real(prepared, seed)
                results[dataset][METHODS[0]].append(real)
                rows.append({"dataset": dataset, "seed": seed, "method": METHODS[0], "scores": real})
                trtr_auc = real["tstr_auc"]

                trial = pick_farm_trial(summary, dataset) if summary else None
                if summary and trial is None:
                    notes.add(f"{dataset} seed {seed}: no farm trial finished with a CSV and a "
                              f"finite {SELECT}")
                elif trial is not None:
                    synthetic = load_synthetic_csv(trial["synthetic_csv"], prepared)
                    t0 = time.time()
                    farm = score(synthetic, prepared, seed, trtr_auc, real["dcr_median"])
                    scoring = time.time() - t0
                    farm["seconds"] = farm_seconds[seed]
                    if trial.get("tstr") and abs(trial["tstr"]["auc"] - farm["tstr_auc"]) > 1e-9:
                        notes.add(f"{dataset} seed {seed}: the farm's own TSTR AUC "
                                  f"{trial['tstr']['auc']:.4f} != the benchmark's "
                                  f"{farm['tstr_auc']:.4f} for the same CSV")
                    results[dataset][METHODS[1]].append(farm)
                    m = trial["metrics"]
                    rows.append({"dataset": dataset, "seed": seed, "method": METHODS[1],
                                 "scores": farm, "detail":
                                 f"{trial['trial']} `{trial['setting']}` "
                                 f"({m[SELECT]:.3f}, epoch {trial['best_epoch']}; "
                                 f"best of {sum(t['dataset'] == dataset for t in summary['trials'])})"})
                    say(f"seed {seed}: {dataset}: farm trial {trial['trial']} "
                        f"({SELECT} {m[SELECT]:.3f}): TSTR AUC {farm['tstr_auc']:.3f}, "
                        f"TRTR {trtr_auc:.3f} (scored in {scoring:.1f} s)")

                for kind in args.peers:
                    say(f"seed {seed}: {dataset}: fitting {kind} on {len(s.train)} rows")
                    synthetic, seconds = fit_peer(kind, prepared, seed, args, notes, dataset)
                    synthetic = as_table_dtypes(synthetic, prepared)
                    t0 = time.time()
                    peer = score(synthetic, prepared, seed, trtr_auc, real["dcr_median"])
                    scoring = time.time() - t0
                    peer["seconds"] = seconds
                    results[dataset][kind].append(peer)
                    rows.append({"dataset": dataset, "seed": seed, "method": kind, "scores": peer})
                    say(f"seed {seed}: {dataset}: {kind} in {seconds:.0f} s: TSTR AUC "
                        f"{peer['tstr_auc']:.3f} (scored in {scoring:.1f} s)")
                    write_json(rows, args, command)  # after every method: a stopped run keeps
                                                     # what it measured
        finally:
            if args.keep:
                say(f"seed {seed}: kept {storage}")
            else:
                shutil.rmtree(storage, ignore_errors=True)

    total = time.time() - started
    for dataset in args.datasets:
        lines += [""] + dataset_table(dataset, results[dataset], info.get(dataset, {"line": ""}))
    lines += [
        "",
        "Mean ± sample std over the split seeds. Every method is scored by the same code "
        "(farm.evaluation.table_scores.tstr, farm.metrics.tabular) on the same split:",
        "",
        "- TSTR: the seeds' random forest (100 trees) trained on the synthetic rows, tested on "
        "the real test split; AUC / TRTR = TSTR AUC divided by the same seed's TRTR AUC.",
        "- detection AUC: a small gradient-boosting classifier telling the synthetic rows from "
        "the real TEST rows (3-fold, equal counts); 0.5 = indistinguishable.",
        "- DCR median / exact copies: distance of each synthetic row to its nearest real TRAIN "
        "row (fit + val) in the farm's encoding (one-hot, min-max from the fit rows); copies = "
        "share within 1e-6.",
        "- \\* real (TRTR): the forest trained on the real train rows; its detection AUC is real "
        "train vs real test and its DCR is the real test rows' distance to the train rows, i.e. "
        "what fresh real rows score.",
        f"- farm ({', '.join(args.families)}): per dataset and seed the ONE trial with the "
        f"highest `{SELECT}` (the farm's selection metric, computed on fit/val only), among all "
        "trials of those families in the preset. "
        "The farm's GAN trains on the `fit` rows only (val picks its epoch and trial); CTGAN and "
        "TVAE train on fit + val.",
        f"- † farm wall time: the whole `run_farm.py` command for that seed (Ray start, "
        f"{', '.join(args.datasets)} and every other dataset of the family, all trials in "
        "parallel, export); CTGAN/TVAE: fit + sample of one model on one dataset; real: the "
        "TRTR forest.",
        "- Peers sample as many rows as the train split; the farm exports as many "
        "(data.tables.synthetic_rows = 0).",
    ]
    lines += ["", "## Wall time", ""]
    for seed in args.seeds:
        if seed in farm_seconds:
            parts = [f"farm command {farm_seconds[seed]:.0f} s"]
            for kind in args.peers:
                secs = [r["scores"]["seconds"] for r in rows if r["seed"] == seed and r["method"] == kind]
                if secs:
                    parts.append(f"{kind} {sum(secs):.0f} s over {len(secs)} dataset(s)")
            lines.append(f"- seed {seed}: " + ", ".join(parts))
    lines.append(f"- whole benchmark: {total:.0f} s; load average at the end "
                 f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} (other work shares the CPU)")
    lines += ["", "## Per seed", ""] + per_seed_table(rows)
    lines += ["", "'minority class': share of the real train split's rarest class among the rows "
              "(a generator that emits one class gets TSTR AUC 0.5). "
              "'rows out of range': synthetic rows with a numeric value outside the range "
              "of the fit rows (the farm's decoder clips to it; CTGAN/TVAE do not)."]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in sorted(notes)]
    report = "\n".join(lines) + "\n"
    print(report)
    write_json(rows, args, command)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
        say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
