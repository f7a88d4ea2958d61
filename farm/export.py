"""From a trial's best checkpoint to a synthetic CSV in the original schema, and its TSTR score.

The seeds' random forest (sklearn defaults, 100 trees) is trained on the synthetic rows and on
the real train rows (TRTR, the ceiling), both tested on the held-out real test split: the one
place in the farm where the test split is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from torch.utils.tensorboard import SummaryWriter

from farm import figures
from farm.atomic import replacing

from farm.families import kind_of, params_from
from farm.metrics.tabular import utility
from farm.tables import PreparedTable
from farm.train.trainable import load_state

FOREST_TREES = 100


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """A run that dies midway leaves either the old file or the new one, never half of one."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, index=False)


def sample_from_checkpoint(spec: dict, checkpoint_dir: str | Path, data, n: int):
    """Rebuild the trial's generator from its checkpoint (weights only) and sample from it:
    decoded rows for tables, {class: uint8 images} for images. `data` is the trial's view."""
    import torch

    kind = kind_of(spec["kind"])
    params = params_from(spec["kind"], spec["params"])
    pair = kind.build(params, data, torch.device("cpu"))
    pair.generator.load_state_dict(load_state(checkpoint_dir)["generator"])
    return pair.generator, kind.export(pair.generator, params, data, n, spec["seed"] + 7)


def write_image_folder(by_class: dict, folder: Path) -> None:
    """ImageFolder layout (<class>/<n>.png), written beside and renamed into place whole."""
    from PIL import Image

    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        for name, images in by_class.items():
            (staging / name).mkdir()
            for i, image in enumerate(images):
                Image.fromarray(image).save(staging / name / f"{i:04d}.png")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def write_trial_figures(spec: dict, generator, prepared: PreparedTable, synthetic: pd.DataFrame,
                        folder: Path, trial_dir: Path) -> dict[str, str]:
    """The chosen epoch's pictures: PNG files for the report, and the same in TensorBoard."""
    kind = kind_of(spec["kind"])
    params = params_from(spec["kind"], spec["params"])
    data = prepared.trial_data
    pictures = dict(kind.pictures(generator, params, data, spec["seed"]))
    real = data.fit_enc
    pictures["tsne"] = figures.tsne_figure(real, data.transformer.transform(synthetic),
                                           seed=spec["seed"],
                                           title=f"t-SNE: real vs synthetic, {data.name}")
    paths = {}
    with SummaryWriter(str(trial_dir)) as writer:
        for name, fig in pictures.items():
            writer.add_figure(f"chosen_epoch/{name}", fig, close=False)
            paths[name] = str(figures.save(fig, folder / f"{name}.png"))
    return paths


def write_black_box_figures(report: dict, folder: Path) -> dict[str, str]:
    """The report's figures 8-13: the forest's ROC and its confidences per true class."""
    roc = figures.roc_figure(report["roc"]["fpr"], report["roc"]["tpr"], report["auc"],
                             title="black box on the test split")
    confidences = report["confidence_positive_rows"] + report["confidence_negative_rows"]
    positive = report["positive_class"]
    labels = [f"truly {positive}"] * len(report["confidence_positive_rows"]) + \
        [f"truly not {positive}"] * len(report["confidence_negative_rows"])
    hist = figures.confidence_histograms(confidences, labels, title=f"black box: P({positive}) on test rows")
    return {"roc": str(figures.save(roc, folder / "black_box_roc.png")),
            "confidences": str(figures.save(hist, folder / "black_box_confidences.png"))}


def forest_scores(train_X, train_y, test_X, test_y, seed: int) -> dict[str, float]:
    scores = utility(train_X, train_y, test_X, test_y, seed=seed, n_estimators=FOREST_TREES)
    return {"accuracy": scores["utility/accuracy"], "auc": scores["utility/auc"]}


def tstr(synthetic: pd.DataFrame, prepared: PreparedTable, seed: int) -> dict[str, float]:
    return forest_scores(*prepared.encode_xy(synthetic), *prepared.test_xy, seed)


def trtr(prepared: PreparedTable, seed: int) -> dict[str, float]:
    return forest_scores(*prepared.train_xy, *prepared.test_xy, seed)
