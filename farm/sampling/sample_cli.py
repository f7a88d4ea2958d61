"""`run_farm.py sample`: rows or images from a grown trial or a generator file, written whole
with a manifest; the same command with the same seed writes the same bytes.

A table is a CSV in the original schema at --out, with `<stem>.manifest.json` beside it;
images are an ImageFolder at --out (`<class>/<n>.png`) with `manifest.json` inside. The
manifest says which trial, checkpoint and epoch made them, the seed, and which noise draws
(per stream: its torch seed and the range of draws read). Bad input is one line on stderr
and exit code 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from farm.infra.atomic import replacing
from farm.infra.errors import ConfigError, FarmError

USAGE = ("run_farm.py sample (--name NAME [--storage-path DIR|URI] (--trial TRIAL | --family F "
         "[--dataset D]) | --generator FILE) (--rows N [--confidence C] | --per-class N "
         "[--class C ...]) [--seed S] --out PATH [--force]")


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (FarmError) rather than usage and a bare exit."""

    def error(self, message):
        raise ConfigError(message)


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="run_farm.py sample", usage=USAGE,
                       description="Draw rows or images from a trial the farm grew (its kept "
                                   "epoch) or from a generator file.")
    p.add_argument("--name", help="the finished experiment to draw from")
    p.add_argument("--storage-path", default=os.environ.get("FARM_STORAGE", "results"),
                   help="where it lives: a folder or a bucket URI (default ./results)")
    p.add_argument("--trial", help="the trial, by name (see summary.json)")
    p.add_argument("--family", help="the trial the summary chose for this family ...")
    p.add_argument("--dataset", help="... on this dataset (needed when it grew on several)")
    p.add_argument("--generator", metavar="FILE", help="a generator file (Generator.save) "
                                                        "instead of an experiment")
    p.add_argument("--rows", type=int, metavar="N", help="rows of a table")
    p.add_argument("--per-class", type=int, metavar="N", help="images of every class asked for")
    p.add_argument("--class", dest="classes", action="append", metavar="C",
                   help="a class to draw (repeat it; default every class the model makes)")
    p.add_argument("--confidence", type=float, metavar="C",
                   help="tabular-b: every row asked for at this black-box confidence in [0, 1] "
                        "(default: spread evenly over [0, 1])")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="the CSV (a table) or the folder (images) to write")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.add_argument("--data-dir", default=os.environ.get("FARM_DATA_DIR"),
                   help="where the experiment's tables are, if not where the run found them")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
        outputs = _check(args)
        generator = _generator(args)
        _check_request(generator, args)
        written = _write(generator, args, *outputs)
    except FarmError as exc:
        if "--debug" in argv:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(written)
    return 0


def manifest_path(out: Path) -> Path:
    """A table's manifest: `<stem>.manifest.json` beside the CSV."""
    return out.with_name(f"{out.stem}.manifest.json")


def _check(args) -> tuple[Path, Path | None]:
    """Every check that needs no experiment, before anything is read: (out, its manifest)."""
    if (args.name is None) == (args.generator is None):
        raise ConfigError("sample draws from --name NAME (an experiment) or --generator FILE: "
                          "give one")
    chosen = [f for f in ("trial", "family", "dataset") if getattr(args, f) is not None]
    if args.generator and chosen:
        raise ConfigError(f"--generator FILE is one trial already; drop --{chosen[0]}")
    if args.name and not (args.trial or args.family):
        raise ConfigError("sample --name NAME needs --trial TRIAL, or --family F [--dataset D]")
    if args.trial and (args.family or args.dataset):
        raise ConfigError("name --trial, or --family and --dataset, not both")
    if (args.rows is None) == (args.per_class is None):
        raise ConfigError("ask for --rows N (a table) or --per-class N (images): one of them")
    count, flag = (args.rows, "--rows") if args.rows is not None else (args.per_class,
                                                                       "--per-class")
    if count < 1:
        raise ConfigError(f"{flag} must be at least 1, got {count}")
    if args.rows is not None and args.classes:
        raise ConfigError("--class goes with --per-class (images), not --rows")
    if args.per_class is not None and args.confidence is not None:
        raise ConfigError("--confidence asks tabular-b for rows; it goes with --rows")
    if args.confidence is not None and not 0.0 <= args.confidence <= 1.0:
        raise ConfigError(f"--confidence must be in [0, 1], got {args.confidence}")
    out = Path(args.out)
    manifest = manifest_path(out) if args.rows is not None else None
    for path in (out, manifest):
        if path is not None and path.exists() and not args.force:
            raise ConfigError("exists; pass --force to replace it", where=path)
    if args.rows is not None and out.is_dir():
        raise ConfigError("is a folder; a table is written to a CSV file", where=out)
    if args.per_class is not None and out.exists() and not out.is_dir():
        raise ConfigError("is a file; images are written to a folder", where=out)
    return out, manifest


def _generator(args):
    if args.generator:
        from farm.sampling.generators import load_generator

        return load_generator(args.generator)
    from farm.infra.storage import Store
    from farm.sampling.finished import Experiment

    experiment = Experiment(Store.open(args.storage_path, args.name), args.data_dir)
    one_class = args.classes[0] if args.classes and len(args.classes) == 1 else None
    return experiment.generator(args.trial, args.family, args.dataset, one_class)


def _check_request(generator, args) -> None:
    """A table asked for images or images asked for rows, named in the flags' words."""
    name = generator.about.get("trial") or "the generator"
    if generator.modality == "image" and args.rows is not None:
        raise ConfigError(f"trial {name} makes images: ask with --per-class N [--class C], "
                          "not --rows")
    if generator.modality == "table" and args.per_class is not None:
        raise ConfigError(f"trial {name} makes rows of table {generator.about.get('dataset')}:"
                          " ask with --rows N, not --per-class")
    if generator.modality == "image":
        generator.check_classes(args.classes)


def _manifest(generator, args, n: int, classes) -> dict:
    """What made the output: the trial and checkpoint, the seed, and the noise it read. No
    times or output paths, so the same command writes the same bytes."""
    about = generator.about
    source = {"generator_file": str(Path(args.generator).resolve())} if args.generator else {}
    manifest = {"made_by": "run_farm.py sample", **source, **about, "sample_seed": args.seed,
                "noise": generator.noise(n, args.seed, classes)}
    if generator.modality == "table":
        manifest["rows"] = n
        if generator.steered:
            manifest["confidence"] = ("evenly over [0, 1]" if args.confidence is None
                                      else args.confidence)
    else:
        manifest["per_class"] = n
    return manifest


def _write(generator, args, out: Path, manifest: Path | None) -> str:
    if generator.modality == "table":
        frame = generator.sample(args.rows, args.seed, confidence=args.confidence)
        record = _manifest(generator, args, args.rows, None)
        with replacing(out) as csv, replacing(manifest) as notes:
            frame.to_csv(csv, index=False)
            notes.write_text(json.dumps(record, indent=1) + "\n")
        return f"Wrote {len(frame)} rows to {out} (manifest {manifest})"
    from farm.data.images import write_image_folder

    classes = generator.check_classes(args.classes)
    images, labels = generator.sample(args.per_class, args.seed, classes=classes)
    by_class = {name: images[labels == name] for name in classes}
    write_image_folder(by_class, out, header=_manifest(generator, args, args.per_class, classes))
    return f"Wrote {len(images)} images ({len(classes)} classes) to {out}/ (manifest.json inside)"
