"""Tests for farm.reporting.report and the report's figures: a synthetic summary.json becomes a
self-contained report.html (every picture embedded, every text escaped) and a short report.md."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from farm.infra.errors import DataError
from farm.reporting import figures
from farm.reporting.report import write_report

CLASSES = ["apples", "bananas", "cherries"]


def _decodes(data: bytes) -> None:
    image = Image.open(BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.size[0] > 0


def _rng_images(n, size=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


# --- figures --------------------------------------------------------------------------------


def test_confusion_figure_small_and_30_classes(tmp_path):
    small = figures.confusion_figure([[5, 1, 0], [2, 3, 1], [0, 0, 0]], CLASSES, title="t")
    assert isinstance(small, figures.plt.Figure)
    assert len(small.axes[0].texts) == 9  # counts written in cells
    _decodes(figures.save(small, tmp_path / "small.png").read_bytes())

    names = [f"class number {i}" for i in range(30)]
    matrix = np.random.default_rng(0).integers(0, 9, (30, 30))
    big = figures.confusion_figure(matrix, names)
    assert len(big.axes[0].texts) == 0  # too many classes to write counts
    assert big.get_size_inches()[0] <= 12.0
    assert [t.get_text() for t in big.axes[0].get_yticklabels()] == names
    _decodes(figures.save(big, tmp_path / "big.png").read_bytes())


def test_curves_figure_nans_legend_and_chosen_dot(tmp_path):
    nan = float("nan")
    series = {"t0": ([0, 1, 2, 3], [0.5, nan, 0.3, 0.4]), "t1": ([0, 1, 2], [nan, nan, nan]),
              "t2": ([0, 1, 2], [0.9, 0.8, 0.7])}
    fig = figures.curves_figure(series, {"t0": 2, "t1": 1}, "kid", "min", title="fruits")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "kid" and "lower is better" in ax.get_title()
    assert ax.get_legend() is not None
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(dots) == 1 and list(dots[0].get_ydata()) == [0.3]
    _decodes(figures.save(fig, tmp_path / "c.png").read_bytes())

    many = {f"trial{i}": (list(range(5)), list(np.linspace(0, 1, 5) + i)) for i in range(12)}
    fig = figures.curves_figure(many, {}, "score", "max")
    assert fig.axes[0].get_legend() is None and len(fig.axes[0].lines) == 12
    assert "higher is better" in fig.axes[0].get_title()
    figures.plt.close(fig)


def test_class_grid_figure_with_empty_halves(tmp_path):
    rows = [("apples", _rng_images(8), _rng_images(3, seed=1)),
            ("bananas", _rng_images(2), np.zeros((0, 8, 8, 3), np.uint8)),
            ("cherries", np.zeros((0, 8, 8, 3), np.uint8), _rng_images(7, seed=2))]
    fig = figures.class_grid_figure(rows, title="grid")
    ax = fig.axes[0]
    assert len(ax.images) == 1  # one mosaic, one imshow
    assert [t.get_text() for t in ax.get_yticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_xticklabels()] == ["real", "synthetic"]
    _decodes(figures.save(fig, tmp_path / "g.png").read_bytes())


# --- report ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """One tiny PNG of each kind, made once and copied wherever a summary needs a figure."""
    folder = tmp_path_factory.mktemp("pngs")
    fig = figures.confusion_figure([[3, 1], [0, 4]], ["a", "b"])
    fig.set_size_inches(2, 2)
    confusion = figures.save(fig, folder / "confusion.png")
    fig = figures.curves_figure({"t": ([0, 1], [1.0, 0.5])}, {"t": 1}, "kid", "min")
    fig.set_size_inches(2, 1.5)
    curves = figures.save(fig, folder / "curves.png")
    rows = [(c, _rng_images(2), _rng_images(1)) for c in CLASSES]
    fig = figures.class_grid_figure(rows)
    fig.set_size_inches(2, 1.5)
    grid = figures.save(fig, folder / "grid.png")
    return {"confusion": confusion, "curves": curves, "grid": grid}


def _result(figure, accuracy):
    return {"accuracy": accuracy, "per_class": {"apples": 0.9, "bananas": None, "cherries": 0.5},
            "confusion": [[9, 1, 0], [0, 0, 0], [2, 3, 5]], "train_images": 60, "seconds": 1.0,
            "figure": str(figure)}


def _experiment(tmp_path, pngs) -> tuple[Path, list[Path]]:
    """A finished-looking experiment folder; returns it and the figure paths that exist."""
    exp = tmp_path / "storage" / "demo"
    figs = exp / "figures"
    figs.mkdir(parents=True)
    existing = []

    def png(name, kind):
        path = figs / name
        shutil.copy(pngs[kind], path)
        existing.append(path)
        return str(path)

    table_trial = {
        "family": "ctgan", "dataset": "credit", "class": None, "trial": "a<b", "setting": "lr=1e-3",
        "params": {}, "seed": 0, "status": "ok", "error": None, "best_epoch": 7,
        "select_metric": "detection_auc", "metrics": {"detection_auc": 0.612},
        "checkpoint": "/x", "synthetic_csv": "/x.csv",
        "tstr": {"accuracy": 0.701, "auc": 0.733},
        "real_plus_synthetic": {"accuracy": 0.745, "auc": 0.781},
        "field": {"column_shapes": 0.911, "column_pair_trends": 0.877, "detection_xgb": 0.642,
                  "dcr_share": 0.512, "dcr_ratio": 0.957},
        "figures": {"tsne": png("tsne.png", "curves"),
                    "confidence_scatter": png("scatter.png", "curves")},
        "chosen": True, "pick": True}
    failed = {"family": "ctgan", "dataset": "credit", "class": None, "trial": "broken_1",
              "setting": "lr=9", "params": {}, "seed": 1, "status": "error",
              "error": "Traceback...\nValueError: loss is <NaN>", "best_epoch": None,
              "select_metric": "detection_auc", "metrics": {}, "checkpoint": None}
    image_trials = [
        {"family": "dcgan", "dataset": "fruits", "class": c, "trial": f"dcgan_{c}",
         "setting": "base", "params": {}, "seed": 0, "status": "ok", "error": None,
         "best_epoch": 3, "select_metric": "kid/mean",
         "metrics": {"kid/mean": 0.0123, "judge_accuracy/mean": 0.875}, "checkpoint": "/c",
         "synthetic_dir": "/s", "synthetic_images": 32,
         "pools": ["best"] if c != "cherries" else []}
        for c in CLASSES]
    evaluator = {
        "config": {}, "workers": 1, "device": "cpu", "seconds": 12.0,
        "datasets": {"fruits": {
            "classes": CLASSES, "chance": 1 / 3, "test_images": 30,
            "ceiling": _result(png("ceiling.png", "confusion"), 0.912),
            "control": {"accuracy": 0.871, "train_images": 156, "synthetic_share": 0.25},
            "pools": {
                "best": {"dir": "/p", "manifest": "/m", "images": 96,
                         "members": {c: f"dcgan_{c}" for c in CLASSES},
                         "cas": _result(png("cas_best.png", "confusion"), 0.654),
                         "real_plus_synthetic": _result(png("rps_best.png", "confusion"), 0.933),
                         "cas_ratio": 0.717, "augmentation_gain": 0.021},
                "last": {"same_as": "best", "members": {c: f"dcgan_{c}" for c in CLASSES}}},
            "best_pool": "best",
            "figures": {"classes": png("classes.png", "grid"),
                        "tsne/best": str(figs / "gone" / "tsne_best.png")}}}}
    summary = {
        "version": 2, "name": "demo", "preset": "smoke", "created": "2024-05-01T10:00:00+00:00",
        "seed": 0, "experiment_dir": str(exp), "seconds": 321.5,
        "phases": {"prepare": 20.0, "judge": 30.5, "trials": 240.0, "evaluator": 31.0},
        "datasets": {
            "credit": {"kind": "table", "source": "/data/credit.arff", "target": "class",
                       "rows": 1000, "classes": {"good": 700, "bad": 300},
                       "trtr": {"accuracy": 0.765, "auc": 0.789},
                       "smote": {"tstr": {"accuracy": 0.722, "auc": 0.758},
                                 "real_plus_synthetic": {"accuracy": 0.751, "auc": 0.79},
                                 "field": {"column_shapes": 0.904, "column_pair_trends": 0.839,
                                           "detection_xgb": 0.867, "dcr_share": 0.511,
                                           "dcr_ratio": 0.403}},
                       "black_box": {"positive_class": "good", "test_accuracy": 0.75,
                                     "test_auc": 0.77,
                                     "figures": {"roc": png("roc.png", "curves"),
                                                 "confidences": png("conf.png", "curves")}}},
            "fruits": {"kind": "image", "images": 300, "classes": CLASSES,
                       "judge": {"test_accuracy": 0.95, "chance": 1 / 3}}},
        "trials": [table_trial, failed, *image_trials],
        "figures": {"curves/ctgan": png("curves_ctgan.png", "curves"),
                    "curves/dcgan": png("curves_dcgan.png", "curves")},
        "evaluator": evaluator}
    (exp / "summary.json").write_text(json.dumps(summary, indent=2))
    return exp, existing


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tags, self.text = [], set(), []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "img":
            self.imgs.append(dict(attrs)["src"])

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_embeds_every_existing_figure(tmp_path, pngs):
    exp, existing = _experiment(tmp_path, pngs)
    html_path, md_path = write_report(exp)
    assert html_path == exp / "report.html" and md_path == exp / "report.md"
    page = _parse(html_path)
    assert len(page.imgs) == len(existing) == 10
    for src in page.imgs:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        _decodes(base64.b64decode(src[len(prefix):], validate=True))
    raw = html_path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:|//)", raw) and "script" not in page.tags
    assert not list(exp.glob(".report*"))  # no temporary files left behind


def test_report_headline_numbers_and_tables(tmp_path, pngs):
    exp, _ = _experiment(tmp_path, pngs)
    html_path, md_path = write_report(exp)
    raw = html_path.read_text(encoding="utf-8")
    text = " ".join(_parse(html_path).text)
    for number in ("0.654", "0.912", "0.72", "0.933", "+0.021", "0.333",  # image headline
                   "0.765", "0.789", "0.701", "0.733", "0.745", "0.781",  # table headline
                   "0.0123", "0.875", "0.612"):  # trial table
        assert number in text, number
    assert re.search(r'<tr class="best"><td>best</td>', raw)
    assert "same as best" in text
    assert "ValueError: loss is &lt;NaN&gt;" in raw
    assert "python run_farm.py --report-only --name demo --storage-path" in text
    assert str(tmp_path / "storage") in text
    md = md_path.read_text(encoding="utf-8")
    assert "0.654" in md and "+0.021" in md and "| **best** |" in md and "broken_1" in md
    control = ("Control: the real train split plus 96 images of pure noise, drawn as 25% of every "
               "pass as the pools are, scores 0.871 (-0.041 over real alone)")
    assert control in text and control in md
    assert "](figures/classes.png)" in md and "](figures/curves_ctgan.png)" in md
    for number in ("0.911", "0.877", "0.642", "0.512", "0.957",  # the chosen trial's field scores
                   "0.722", "0.758", "0.904", "0.839", "0.867", "0.511", "0.403"):  # SMOTE's
        assert number in text and number in md, number
    assert "SMOTE (baseline)" in text and "SMOTE (baseline)" in md
    assert "(the farm's pick)" in text and "(the farm's pick)" in md
    assert "ContingencySimilarity" in text
    phases = "prepare 20 s (6%) · judge 30 s (9%) · trials 240 s (75%) · evaluator 31 s (10%)"
    assert phases in text and phases in md
    assert str(exp) + "/figures" not in md.split("Regenerate")[0]  # relative picture paths


def test_report_escapes_text_and_notes_missing_figures(tmp_path, pngs):
    exp, _ = _experiment(tmp_path, pngs)
    html_path, md_path = write_report(exp)
    raw = html_path.read_text(encoding="utf-8")
    assert "a&lt;b" in raw and "a<b" not in raw
    assert "a<b" not in md_path.read_text(encoding="utf-8")
    missing = exp / "figures" / "gone" / "tsne_best.png"
    assert f"<em>missing: {missing}</em>" in raw


def test_report_follows_a_moved_experiment(tmp_path, pngs):
    exp, existing = _experiment(tmp_path, pngs)
    moved = tmp_path / "elsewhere" / "demo"
    shutil.move(str(exp), moved)
    page = _parse(write_report(moved)[0])
    assert len(page.imgs) == len(existing)


def test_report_without_evaluator_or_trials(tmp_path, pngs):
    exp, _ = _experiment(tmp_path, pngs)
    summary = json.loads((exp / "summary.json").read_text())
    summary.update(evaluator=None, trials=[], figures={})
    (exp / "summary.json").write_text(json.dumps(summary))
    html_path, md_path = write_report(exp)
    page = _parse(html_path)
    assert len(page.imgs) == 2  # the black box's two figures
    assert "Headline" in " ".join(page.text) and "Curves" not in " ".join(page.text)
    assert md_path.is_file()


def test_missing_summary_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no summary.json") as caught:
        write_report(tmp_path)
    assert caught.value.where == str(tmp_path / "summary.json")


def test_the_epoch_cell_says_where_asha_stopped_a_trial_and_whose_weights_pbt_gave_it():
    from farm.reporting.report import _epoch_cell

    assert _epoch_cell({"best_epoch": 40, "last_epoch": 100, "epochs": 100}) == "40"
    assert _epoch_cell({"best_epoch": 40, "last_epoch": 60, "epochs": 100}) == \
        "40 (stopped at 60/100)"
    assert _epoch_cell({"best_epoch": 80, "last_epoch": 100, "epochs": 100, "exploits": [
        {"epoch": 50, "donor": 3, "params": {}}, {"epoch": 70, "donor": 1, "params": {}}]}) == \
        "80 (took #3's weights at 50, #1's weights at 70)"
    assert _epoch_cell({"best_epoch": None}) == "–"


def test_report_says_whether_each_pool_helps_with_its_interval_and_the_protocol(tmp_path, pngs):
    exp, _ = _experiment(tmp_path, pngs)
    summary = json.loads((exp / "summary.json").read_text())
    ev = summary["evaluator"]["datasets"]["fruits"]
    ev["protocol"] = "resnet18, 10 passes over the real train split, 3 classifier seed(s)"
    ev["control"].pop("synthetic_share")
    ev["control_gain"] = {"mean": -0.004, "ci": [-0.02, 0.012], "per_seed": [0, 0, -0.012]}
    ev["pools"]["best"].update(
        gain={"mean": 0.021, "ci": [0.005, 0.037], "per_seed": [0.01, 0.02, 0.033]},
        usefulness=0.4321,
        verdict="helps: +0.021 [+0.005, +0.037] over real alone, noise control -0.004")
    # `evaluator.pools: chosen`: a pool the classifiers skipped keeps its usefulness row
    ev["pools"]["spare"] = {"dir": "/q", "images": 96, "usefulness": 0.1234, "mean_kid": 2.5,
                            "not_trained": "evaluator.pools is chosen"}
    (exp / "summary.json").write_text(json.dumps(summary))
    html_path, md_path = write_report(exp)
    text, md = " ".join(_parse(html_path).text), md_path.read_text(encoding="utf-8")
    for page in (text, md):
        assert "best: helps: +0.021 [+0.005, +0.037] over real alone, noise control -0.004" in page
        assert "Protocol: resnet18, 10 passes" in page and "one is" not in page
        assert "One of the 30 test images is 0.0333 of accuracy." in page
        assert "+0.021 [+0.005, +0.037]" in page and "0.432" in page and "0.123" in page
        assert "spare: " not in page  # no verdict for a pool nothing trained on
        assert "mixed in as the pools are, scores 0.871 (-0.041 [-0.020, +0.012]" in page
