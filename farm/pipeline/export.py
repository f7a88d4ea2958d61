"""From a trial's kept checkpoint to what the farm hands out: a synthetic CSV in the original
schema, or per class a folder of images (optionally the ones the judge finds most like their
class), with the chosen epoch's pictures. A table's scores on the held-out test split are
farm/evaluation/table_scores.py's.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from torch.utils.tensorboard import SummaryWriter

from farm.config.family_params import params_from
from farm.data.prepare_tables import PreparedTable
from farm.families.kinds import kind_of
from farm.gan.checkpoint import load_state
from farm.infra.atomic import replacing
from farm.reporting import figures

SAMPLE_SEED_OFFSET = 7


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> None:
    """A run that dies midway leaves either the old file or the new one, never half of one."""
    with replacing(path) as tmp:
        frame.to_csv(tmp, index=False)


def sample_seed(spec: dict) -> int:
    """The seed a trial's export samples with (its own seed, offset from the evaluation noise)."""
    return int(spec["seed"]) + SAMPLE_SEED_OFFSET


def sample_from_checkpoint(spec: dict, checkpoint_dir: str | Path, data, n: int):
    """Rebuild the trial's generator from its checkpoint (weights only) and sample from it:
    decoded rows for tables, {class: uint8 images} for images. `data` is the trial's view.
    The same (spec, checkpoint, n) always gives the same output: that is how a manifest's
    files can be regenerated."""
    import torch

    kind = kind_of(spec["kind"])
    params = params_from(spec["kind"], spec["params"])
    pair = kind.build(params, data, torch.device("cpu"))
    pair.generator.load_state_dict(load_state(checkpoint_dir)["generator"])
    return pair.generator, kind.export(pair.generator, params, data, n, sample_seed(spec))


def provenance(entry: dict, spec: dict, n: int) -> dict:
    """What a manifest says made a file: trial, checkpoint, epoch and seeds."""
    return {"trial": entry["trial"], "family": entry["family"], "setting": entry["setting"],
            "dataset": entry["dataset"], "checkpoint": entry["checkpoint"],
            "epoch": entry["best_epoch"], "seed": entry["seed"], "sample_seed": sample_seed(spec),
            "samples": n}


def keep_most_like_their_class(by_class: dict, judge, classes, keep: int):
    """Rejection sampling by the judge: of each class's draws, the `keep` images the judge
    (trained on the real train split only) finds most likely to be of that class. Returns
    ({class: uint8 images}, {class: their indices in the draw}), best first, so a manifest can
    say which draws were kept. Thirty classes from a small conditional GAN mostly look like no
    class in particular; this drops the draws that say least about theirs."""
    import torch

    from farm.data.images import to_unit_range

    kept, indices = {}, {}
    for name, images in by_class.items():
        probs = judge.probs(to_unit_range(images))[:, list(classes).index(name)]  # no_grad
        order = torch.argsort(probs.cpu(), descending=True, stable=True)[:keep].numpy()
        kept[name], indices[name] = images[order], [int(i) for i in order]
    return kept, indices


def draw_images(spec: dict, checkpoint_dir: str | Path, trial_data, per_class: int,
                judge_filter: int = 1):
    """A chosen checkpoint's image export: ({class: uint8 images}, {class: their indices in the
    draw} or None when every draw is kept, draws per class). With `judge_filter` k > 1 it draws
    k x `per_class` and keeps the `per_class` the experiment's judge finds most like their class.
    `trial_data` is the dataset's ImageData (the kind picks its trial's view)."""
    from farm.metrics.judge import Judge

    draws = per_class * judge_filter
    view = kind_of(spec["kind"]).view(trial_data, spec)
    _, by_class = sample_from_checkpoint(spec, checkpoint_dir, view, draws)
    if judge_filter == 1:
        return by_class, None, draws
    by_class, kept = keep_most_like_their_class(by_class, Judge.from_payload(trial_data.judge),
                                                trial_data.classes, per_class)
    return by_class, kept, draws


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
    hist = figures.confidence_histograms(confidences, labels,
                                         title=f"black box: P({positive}) on test rows")
    return {"roc": str(figures.save(roc, folder / "black_box_roc.png")),
            "confidences": str(figures.save(hist, folder / "black_box_confidences.png"))}

