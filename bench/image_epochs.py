"""Chosen epoch vs last epoch, per class, for the image families of a finished experiment.

The farm keeps each trial's best epoch by KID to the class's real TRAIN images, measured on one
fixed noise batch at every evaluation. Those logged values cannot judge the choice: the chosen
epoch is the minimum of that very series, so it is never worse than the last one by
construction. So this script loads the chosen and the last checkpoint of every image trial,
draws noise the run never drew, and scores both again in the judge's space: KID to the class's
held-out TEST images (which nothing in the farm selects with), KID to its train images, and the
judge's accuracy (does it see the requested class?), and their diversity (near 0: the generator
draws one picture whatever its noise). The logged values are shown beside them.

    .venv/bin/python bench/image_epochs.py results/<name> [--images 64] [--out file.md]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from common import emit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.family_params import params_from
from farm.data.prepare_images import image_root, prepare_images
from farm.data.trial_data import ImageData
from farm.evaluation.evaluator import REAL, Task
from farm.families.image_common import judge_for
from farm.families.kinds import kind_of
from farm.gan.checkpoint import load_state

FRESH_SEED_OFFSET = 1000  # the run scored with the trial's seed and exported with seed + 7
COLLAPSED = 0.2  # diversity below this: the generated images are all but one picture


def _progress(experiment: Path, trial: dict) -> pd.DataFrame:
    return pd.read_csv(experiment / "tune" / trial["trial"] / "progress.csv")


def _checkpoint(experiment: Path, trial: dict, name: str) -> Path:
    """A checkpoint folder of the trial, wherever the experiment folder now lives."""
    return experiment / "tune" / trial["trial"] / Path(name).name


def _spec(experiment: Path, trial: dict) -> dict:
    return json.loads((experiment / "tune" / trial["trial"] / "params.json").read_text())["trial"]


def prepared_dataset(experiment: Path, dataset: str, data_dir: str | None):
    """(PreparedImages, the run's config) of an experiment's image dataset: decoded again with
    its own split and judge (prepare_images reuses both), from the settings in run.json; a
    `data_dir` given here wins over the stored one (which may be relative to another folder)."""
    stored = json.loads((experiment / "run.json").read_text())
    settings, config = stored["settings"], stored["config"]
    seed = settings.get("seed")
    seed = int(config["data"].get("split_seed", 0)) if seed is None else seed
    root = image_root(dataset, data_dir or settings.get("data_dir"), settings.get("image_data"))
    return prepare_images(dataset, root, config.get("data", {}), experiment, seed), config


def split_task(prepared, part: str, name: str) -> Task:
    """The images of one part of the run's split (`fit`, `val`, `train` or `test`) as a Task."""
    index = np.asarray(getattr(prepared.split, part), dtype=np.int64)
    return Task(name, prepared.images.images[index], prepared.images.labels[index])


def real_and_test(prepared) -> tuple[Task, Task]:
    """The evaluator's real task (the whole train split, val slice included) and its test."""
    return split_task(prepared, "train", REAL), split_task(prepared, "test", "test")


def reference_sets(experiment: Path, summary: dict, dataset: str, data_dir: str | None,
                   prepared=None):
    """(train view, test view) of an image dataset: the experiment's own split and judge,
    with the judge's features of the train or the held-out test images as KID's reference.
    `prepared`: the dataset as `prepared_dataset` already returned it (not decoded again)."""
    if prepared is None:
        prepared, _ = prepared_dataset(experiment, dataset, data_dir)
    train = prepared.trial_data
    judge = judge_for(train, torch.device("cpu"))  # the payload prepare_images just loaded
    test = np.asarray(prepared.split.test)
    labels = prepared.images.labels[test]
    features = judge.features(prepared.images.to_tensor(test)).cpu().numpy()
    test_view = dataclasses.replace(
        train, images=prepared.images.images[test], labels=labels,
        real_features={k: features[labels == k] for k in range(len(train.classes))})
    return train, test_view


def rescore(spec: dict, checkpoint: Path, sets: dict[str, ImageData], images: int) -> dict:
    """The family's own evaluation of one checkpoint on fresh noise, against each reference."""
    kind = kind_of(spec["kind"])
    params = dataclasses.replace(params_from(spec["kind"], spec["params"]), eval_images=images)
    seed = int(spec["seed"]) + FRESH_SEED_OFFSET
    views = {name: kind.view(data, spec) for name, data in sets.items()}
    generator = kind.build(params, views["train"], torch.device("cpu")).generator
    generator.load_state_dict(load_state(checkpoint)["generator"])
    return {name: kind.evaluate(generator, params, view, seed) for name, view in views.items()}


def _metric(metrics: dict, key: str, name: str | None) -> float:
    return float(metrics[key if name is None else f"{key}/{name}"])


def rows(experiment: Path, summary: dict, sets: dict[str, dict[str, ImageData]],
         images: int) -> list[dict]:
    """One row per class of every finished image trial: logged and fresh scores, chosen and
    last epoch."""
    out = []
    for trial in summary["trials"]:
        if trial["status"] != "ok" or "synthetic_dir" not in trial:
            continue  # tables, failed trials
        spec, progress = _spec(experiment, trial), _progress(experiment, trial)
        logged = {"chosen": progress[progress["epoch"] == trial["best_epoch"]].iloc[-1],
                  "last": progress.iloc[-1]}
        checkpoints = {"chosen": trial["checkpoint"],  # the one the farm kept and exported
                       "last": logged["last"]["checkpoint_dir_name"]}
        scores = {which: rescore(spec, _checkpoint(experiment, trial, name),
                                 sets[trial["dataset"]], images)
                  for which, name in checkpoints.items()}
        per_class = trial["class"] is not None
        names = [trial["class"]] if per_class else list(sets[trial["dataset"]]["train"].classes)
        for name in names:
            key = None if per_class else name
            row = {"family": trial["family"], "setting": trial["setting"], "class": name,
                   "chosen epoch": int(logged["chosen"]["epoch"]),
                   "last epoch": int(logged["last"]["epoch"])}
            for column, source, metric in (("logged KID", None, "kid"),
                                           ("train KID", "train", "kid"),
                                           ("test KID", "test", "kid"),
                                           ("judge acc", "test", "judge_accuracy"),
                                           ("diversity", "train", "diversity")):
                for which in ("chosen", "last"):
                    values = logged[which] if source is None else scores[which][source]
                    row[f"{column} {which}"] = _metric(values, metric, key)
            out.append(row)
    return out


def markdown(table: pd.DataFrame) -> str:
    def cell(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """Per family and setting: in how many classes the chosen epoch scores worse than the last
    on fresh noise (test KID, train KID), and the mean judge accuracy at each."""
    def one(group: pd.DataFrame) -> pd.Series:
        return pd.Series({
            "classes": len(group),
            "chosen = last": int((group["chosen epoch"] == group["last epoch"]).sum()),
            "test KID worse": int((group["test KID chosen"] > group["test KID last"]).sum()),
            "train KID worse": int((group["train KID chosen"] > group["train KID last"]).sum()),
            "mean test KID chosen": group["test KID chosen"].mean(),
            "mean test KID last": group["test KID last"].mean(),
            "judge acc chosen": group["judge acc chosen"].mean(),
            "judge acc last": group["judge acc last"].mean(),
            "collapsed chosen": int((group["diversity chosen"] < COLLAPSED).sum())})
    return (table.groupby(["family", "setting"], sort=False)[list(table.columns)].apply(one)
            .reset_index())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--images", type=int, default=64,
                        help="fresh generated images per class and checkpoint")
    parser.add_argument("--data-dir", help="where the dataset is, if not where the run found it")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    summary = json.loads((args.experiment / "summary.json").read_text())
    image_sets = {n: d for n, d in summary["datasets"].items() if d["kind"] == "image"}
    sets = {}
    for name in image_sets:
        train, test = reference_sets(args.experiment, summary, name, args.data_dir)
        sets[name] = {"train": train, "test": test}
    table = pd.DataFrame(rows(args.experiment, summary, sets, args.images))
    if table.empty:
        raise SystemExit(f"{args.experiment}: no finished image trials")
    lines = [f"# Chosen vs last epoch: {summary['name']} (preset {summary['preset']})", ""]
    for name, info in image_sets.items():
        tests = len(sets[name]["test"].labels)
        lines.append(f"- {name}: judge accuracy on held-out real images "
                     f"{info['judge']['test_accuracy']:.3f} (chance {info['judge']['chance']:.3f});"
                     f" {tests} test images")
    lines += [f"- fresh scores: {args.images} images per class and checkpoint from noise seeds "
              f"the run never drew (trial seed + {FRESH_SEED_OFFSET}); KID in the judge's space "
              "to the class's held-out test images (test KID) or train images (train KID); "
              "judge acc: share of those images the judge puts in the requested class; "
              "diversity: their mean pairwise feature distance over the train images' "
              f"(collapsed: below {COLLAPSED})",
              "- logged KID: what the run measured (train images, its fixed noise batch) and "
              "chose by, so chosen <= last there by construction", "",
              "## Per family and setting", "", markdown(verdicts(table)), "",
              "## Per class", "", markdown(table)]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
