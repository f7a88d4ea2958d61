"""The `run_farm.py` command line: flags in, one experiment out, one clear line on bad input."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from farm.infra.errors import FarmError

REPO = Path(__file__).resolve().parents[2]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_farm.py",
        description="Grow many small GANs with Ray Tune, keep each trial's best epoch, "
                    "export synthetic data and score it on held-out real data.",
        epilog="Draw more from what an experiment grew: run_farm.py sample --help")
    p.add_argument("--preset", default="smoke",
                   help="trials/presets/<name>.yaml: smoke (minutes on a laptop), laptop (all 30 "
                        "image classes on a CPU, minutes in bench/RESULTS.md), full, tiny")
    p.add_argument("--only", help="comma-separated families to grow, their trials queued in "
                   "that order, e.g. tabular-a")
    p.add_argument("--data-dir", default=os.environ.get("FARM_DATA_DIR"),
                   help="folder with <dataset>/<file> copies (default $FARM_DATA_DIR, then the "
                        "cache, then a download)")
    p.add_argument("--storage-path", default=os.environ.get("FARM_STORAGE", "results"),
                   help="where experiments are written: a folder every node sees, or a "
                        "bucket URI such as s3://bucket/prefix (default ./results)")
    p.add_argument("--name", help="experiment name (default <preset>-<date>-<time>)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="Ray cluster to join (default $RAY_ADDRESS, else the cluster `ray start` "
                        "runs on this machine, e.g. the head of `ray up cluster.yaml`, else an "
                        "embedded local Ray)")
    p.add_argument("--local", action="store_true",
                   help="start an embedded Ray on this machine even where a cluster runs")
    p.add_argument("--seed", type=int, help="split and trial seed (default: data.split_seed)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the planned trials and their resources; train nothing")
    p.add_argument("--tabular-data", metavar="PATH",
                   help="your own ARFF or CSV for the tabular families instead of the defaults")
    p.add_argument("--target", metavar="COLUMN", help="target column of --tabular-data "
                                                       "(default: the last column)")
    p.add_argument("--image-data", metavar="DIR",
                   help="your own folder-per-class images for the image families")
    p.add_argument("--gpus-per-trial", type=float, metavar="SHARE",
                   help="GPU share of every trial, e.g. 0.25 packs four per GPU (default: each "
                        "family's resources in trials/*.yaml, used when the cluster has GPUs)")
    p.add_argument("--resume", action="store_true",
                   help="continue the experiment --name whose driver stopped: finished trials "
                        "are kept, unfinished ones continue from their latest checkpoint")
    p.add_argument("--report-only", action="store_true",
                   help="rewrite report.html and report.md of the finished experiment --name "
                        "(under --storage-path) from its summary.json; trains nothing")
    p.add_argument("--trials-dir", default=str(REPO / "trials"), help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true",
                   help="show full tracebacks and Ray's and Tune's whole output")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sample"]:  # a subcommand beside the flags, which stay as they were
        from farm.sampling.sample_cli import main as sample

        return sample(argv[1:])
    args = parser().parse_args(argv)
    if args.report_only:
        return _report_only(args)
    from farm.pipeline.experiment import Settings, run

    settings = Settings(
        trials_dir=Path(args.trials_dir), preset=args.preset,
        only=args.only.split(",") if args.only else None, data_dir=args.data_dir,
        storage_path=args.storage_path, name=args.name, address=args.address,
        local=args.local, seed=args.seed,
        dry_run=args.dry_run, tabular_data=args.tabular_data, target=args.target,
        image_data=args.image_data, gpus_per_trial=args.gpus_per_trial, resume=args.resume,
        debug=args.debug)
    if args.resume and not args.name:
        print("error: --resume needs --name NAME (the experiment to continue)", file=sys.stderr)
        return 2
    try:
        summary = run(settings)
    except FarmError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    if summary is not None and not any(t["status"] == "ok" for t in summary["trials"]):
        print("error: every trial failed; see the errors above and in summary.json",
              file=sys.stderr)
        return 1
    return 0


def _report_only(args) -> int:
    from farm.reporting.report import write_report

    if not args.name:
        print("error: --report-only needs --name NAME (a finished experiment under "
              f"{args.storage_path})", file=sys.stderr)
        return 2
    from farm.infra.storage import experiment_store

    try:
        store = experiment_store(args.storage_path, args.name)
        store.pull()  # a remote experiment: its summary and figures, into the local copy
        html, md = write_report(store.folder)
        store.push()
    except FarmError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"Report: {store.location(html.name)}\n        {store.location(md.name)}")
    return 0
