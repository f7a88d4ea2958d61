"""A finished experiment as one page a person can open, share and archive.

`write_report` reads `<experiment>/summary.json` (nothing else is recomputed) and writes:

* report.html - self-contained: every picture is embedded as a base64 PNG and the CSS is
  inline, so the file can be mailed or copied off a cluster on its own and still shows
  everything. No scripts, no external URLs.
* report.md - short: the headline numbers and the trial table, pictures linked by path
  relative to the experiment folder (readable in a repository browser next to the figures).

Every piece of text from the summary is passed through `html.escape`: trial names, errors and
class names come from users' files and must not turn into markup. A figure that has since been
deleted becomes a "missing: <path>" note rather than an error, so a report can always be made.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import shlex
from pathlib import Path

from farm.infra.atomic import replacing
from farm.infra.errors import DataError
from farm.infra.phases import format_phases
from farm.infra.storage import is_uri, join, parent

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h4 { margin: 1.2em 0 0.4em; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { font-weight: bold; background: #eef6ee; }
tr.chosen td:first-child { color: #080; font-weight: bold; }
td.error { color: #a00; white-space: pre-wrap; font-family: monospace; font-size: 0.85em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
figure { margin: 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
.missing { color: #888; }
footer { margin-top: 3em; border-top: 1px solid #ccc; color: #555; font-size: 0.9em; }
code { background: #f5f5f5; padding: 1px 4px; }
"""


def write_report(experiment_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write report.html and report.md beside summary.json; returns their paths."""
    experiment_dir = Path(experiment_dir)
    summary_path = experiment_dir / "summary.json"
    if not summary_path.is_file():
        raise DataError("no summary.json: not a finished experiment", where=summary_path)
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"unreadable summary.json: {e}", where=summary_path) from e
    figures = _Figures(experiment_dir, summary.get("experiment_dir"))
    html_path, md_path = experiment_dir / "report.html", experiment_dir / "report.md"
    page = _render_html(summary, summary_path, figures)
    notes = _render_markdown(summary, summary_path, figures)
    with replacing(html_path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    with replacing(md_path) as tmp:
        tmp.write_text(notes, encoding="utf-8")
    return html_path, md_path


# ---------------------------------------------------------------------------------------------
# Formatting helpers


def _e(value) -> str:
    return html.escape(str(value))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _num(x, fmt: str = ".3f") -> str:
    return format(x, fmt) if _finite(x) else "–"


def _signed(x) -> str:
    return _num(x, "+.3f")


def _ratio(x) -> str:
    return _num(x, ".2f")


def _metric(metrics: dict, *names: str):
    """The first of `names` present in a trial's metrics (e.g. 'kid' or 'kid/mean')."""
    for name in names:
        if (metrics or {}).get(name) is not None:
            return metrics[name]
    return None


def _get(d, *keys):
    """d[k1][k2]... or None where any level is missing or null."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


class _Figures:
    """Turns a figure path from the summary into markup. Paths are absolute; if the experiment
    folder was moved since, a path under the old folder is looked up under the new one."""

    def __init__(self, experiment_dir: Path, recorded_dir: str | None):
        self.experiment_dir = experiment_dir
        self.recorded_dir = Path(recorded_dir) if recorded_dir else None

    def locate(self, path) -> Path | None:
        path = Path(path)
        if path.is_file():
            return path
        if self.recorded_dir is not None:
            try:
                moved = self.experiment_dir / path.relative_to(self.recorded_dir)
            except ValueError:
                return None
            if moved.is_file():
                return moved
        return None

    def html(self, path, caption: str) -> str:
        found = self.locate(path) if path else None
        if found is None:
            return f'<p class="missing"><em>missing: {_e(path)}</em></p>' if path else ""
        data = base64.b64encode(found.read_bytes()).decode("ascii")
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
                f"<figcaption>{_e(caption)}</figcaption></figure>")

    def markdown(self, path, caption: str) -> str:
        found = self.locate(path) if path else None
        if found is None:
            return f"*missing: {_md(path)}*" if path else ""
        rel = Path(os.path.relpath(found, self.experiment_dir)).as_posix()
        return f"![{_md(caption)}]({rel})"


def _figure_block(figures: _Figures, items: list[tuple[str, str]]) -> str:
    """A wrapping row of figures; `items` are (caption, path)."""
    parts = [figures.html(path, caption) for caption, path in items if path]
    return f'<div class="figures">{"".join(parts)}</div>' if parts else ""


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None,
           numeric: set[int] = frozenset()) -> str:
    """An HTML table; cells are already-escaped markup. `classes` gives each row's class."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(_cell(j, c, numeric) for j, c in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cell(j: int, content: str, numeric) -> str:
    if content.startswith("<td"):  # a ready-made cell (colspan, error)
        return content
    return f'<td class="num">{content}</td>' if j in numeric else f"<td>{content}</td>"


# ---------------------------------------------------------------------------------------------
# Reading the summary


def _image_datasets(summary: dict) -> dict:
    """Image datasets the evaluator scored: name -> its evaluator entry."""
    return _get(summary, "evaluator", "datasets") or {}


def _table_datasets(summary: dict) -> dict:
    return {d: info for d, info in (summary.get("datasets") or {}).items()
            if info.get("kind") == "table"}


def _trials_of(summary: dict, dataset: str) -> list[dict]:
    return [t for t in summary.get("trials") or [] if t.get("dataset") == dataset]


def _chosen(trial: dict) -> bool:
    return bool(trial.get("chosen")) or bool(trial.get("pools"))


def _pool_rows(ev: dict) -> list[tuple[str, dict]]:
    return list((ev.get("pools") or {}).items())


def _trained_pools(ev: dict) -> list[tuple[str, dict]]:
    """Pools that were trained and scored (not `same_as` another pool, nor left out by
    `evaluator.pools: chosen`)."""
    return [(p, info) for p, info in _pool_rows(ev)
            if "same_as" not in info and "not_trained" not in info]


# ---------------------------------------------------------------------------------------------
# HTML sections


def _render_html(summary: dict, summary_path: Path, figures: _Figures) -> str:
    name = summary.get("name", "experiment")
    sections = [_title(summary), _headline(summary), _trials_section(summary),
                _images_section(summary, figures), _curves_section(summary, figures),
                _tables_section(summary, figures), _footer(summary, summary_path)]
    body = "\n".join(s for s in sections if s)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>GAN Farm: {_e(name)}</title><style>{CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def _title(summary: dict) -> str:
    seconds = summary.get("seconds")
    meta = [f"preset <b>{_e(summary.get('preset', '?'))}</b>",
            f"created {_e(summary.get('created', '?'))}",
            f"seed {_e(summary.get('seed', '?'))}"]
    if _finite(seconds):
        meta.append(f"{seconds:.0f} s")
    if summary.get("disk_bytes"):
        meta.append(f"{_size(summary['disk_bytes'])} on disk")
    phases = format_phases(summary.get("phases"), summary.get("phase_use"))
    return (f"<h1>GAN Farm: {_e(summary.get('name', 'experiment'))}</h1>"
            f'<p class="meta">{" · ".join(meta)}</p>'
            + (f'<p class="meta">where the time went: {_e(phases)}</p>' if phases else ""))


def _headline(summary: dict) -> str:
    parts = []
    for dataset, info in (summary.get("datasets") or {}).items():
        if info.get("kind") == "image":
            parts.append(_image_headline(dataset, info, _image_datasets(summary).get(dataset)))
        elif info.get("kind") == "table":
            parts.append(_table_headline(dataset, info, _trials_of(summary, dataset)))
    for dataset, ev in _image_datasets(summary).items():  # scored but not described above
        if dataset not in (summary.get("datasets") or {}):
            parts.append(_image_headline(dataset, {}, ev))
    parts = [p for p in parts if p]
    return "<h2>Headline</h2>\n" + "\n".join(parts) if parts else ""


def _image_headline(dataset: str, info: dict, ev: dict | None) -> str:
    judge = info.get("judge") or {}
    out = [f"<h3>{_e(dataset)} (images)</h3>"]
    if judge:
        out.append(f"<p>Judge accuracy on held-out real images {_num(judge.get('test_accuracy'))}"
                   f" (chance {_num(judge.get('chance'))}).</p>")
    if not ev:
        return "".join(out)
    out.append("<p>CAS: a classifier trained only on a pool's synthetic images, tested on "
               "held-out real ones. Ceiling: the same classifier trained on the real images.</p>")
    out.append("<p>Val accuracy (choice): a classifier trained on the pool's images alone "
               "(the CAS protocol, one seed), tested on the val slice (real train images no GAN "
               "or judge trained on). Usefulness: a linear probe in the judge's features trained "
               "on the pool's images, its mean probability of the right class on the val slice. "
               f"The best pool (highlighted): {_e(ev.get('best_pool_rule') or 'lowest mean KID')}"
               ". Mean KID and judge accuracy: "
               "the pool's members at their chosen epochs (fit images). None of them reads the "
               "test split. GAN time: what the trials it chose from took to grow. A pool "
               "named <code>&lt;family&gt;-blend</code> takes every class's images in turn from "
               "each of the family's trials (its GAN seeds) instead of picking one per "
               "class; <code>all-blend</code> does so over every trial of every family.</p>")
    out.append(_protocol_line(ev, html=True))
    out.append(_control_line(ev, html=True))
    verdicts = _verdict_lines(ev)
    if verdicts:
        out.append("<ul>" + "".join(f"<li>{_e(v)}</li>" for v in verdicts) + "</ul>")
    rows, classes = [], []
    for pool, p in _pool_rows(ev):
        if "same_as" in p:
            rows.append([_e(pool), f'<td colspan="{len(POOL_HEADER) - 1}"><em>same as '
                                   f'{_e(p["same_as"])}</em></td>'])
        else:
            rows.append([_e(pool)] + [_e(c) for c in _pool_numbers(p, ev)])
        classes.append("best" if pool == ev.get("best_pool") else "")
    out.append(_table(POOL_HEADER, rows, classes, numeric=set(range(1, len(POOL_HEADER)))))
    return "".join(out)


def _protocol_line(ev: dict, html: bool) -> str:
    """How every classifier was trained, and what one test image is worth."""
    protocol = ev.get("protocol")
    if not protocol:
        return ""
    images = ev.get("test_images") or 0
    worth = f" One of the {images} test images is {1 / images:.4f} of accuracy." if images else ""
    text = f"Protocol: {protocol}.{worth}"
    return f"<p>{_e(text)}</p>" if html else text


def _verdict_lines(ev: dict) -> list[str]:
    """One line per trained pool: does real + synthetic beat real alone, beyond noise?"""
    return [f"{pool}: {p['verdict']}" for pool, p in _pool_rows(ev)
            if "same_as" not in p and p.get("verdict")]


def _control_line(ev: dict, html: bool) -> str:
    """The control for "real + synthetic": real + as many pure-noise images, same steps."""
    control, ceiling = ev.get("control"), _get(ev, "ceiling", "accuracy")
    if not control or not _finite(ceiling):
        return ""
    share = control.get("synthetic_share")
    drawn = (f", drawn as {share:.0%} of every pass as the pools are," if share
             else ", mixed in as the pools are,")
    gain = ev.get("control_gain") or {}
    ci = gain.get("ci")
    span = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    text = (f"Control: the real train split plus {control.get('train_images', 0) - _train(ev)} "
            f"images of pure noise{drawn} scores "
            f"{_num(control.get('accuracy'))} "
            f"({_signed(control.get('accuracy', 0) - ceiling)}{span} over real alone). A pool's "
            "augmentation gain means something only where it beats this.")
    return f"<p>{_e(text)}</p>" if html else text


def _train(ev: dict) -> int:
    return int(_get(ev, "ceiling", "train_images") or 0)


POOL_HEADER = ["pool", "images", "CAS accuracy", "ceiling", "CAS / ceiling", "real + synthetic",
               "augmentation gain [95%]", "chance", "val accuracy (choice)", "usefulness",
               "mean KID", "judge accuracy", "GAN time"]


def _pool_numbers(p: dict, ev: dict) -> list[str]:
    """A trained pool's cells after its name, in POOL_HEADER's order."""
    seconds = p.get("train_seconds")
    return [str(p.get("images", "–")), _num(_get(p, "cas", "accuracy")),
            _num(_get(ev, "ceiling", "accuracy")), _ratio(p.get("cas_ratio")),
            _num(_get(p, "real_plus_synthetic", "accuracy")), _gain_cell(p),
            _num(ev.get("chance")), _num(p.get("choice_accuracy")), _num(p.get("usefulness")),
            _num(p.get("mean_kid"), ".4g"),
            _num(p.get("mean_judge_accuracy")),
            f"{seconds / 60:.1f} min" if _finite(seconds) else "–"]


def _gain_cell(p: dict) -> str:
    """The augmentation gain, with its 95% interval over classifier seeds when there is one."""
    ci = _get(p, "gain", "ci")
    text = _signed(p.get("augmentation_gain"))
    return f"{text} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else text


def _table_headline(dataset: str, info: dict, trials: list[dict]) -> str:
    trtr = info.get("trtr") or {}
    out = [f"<h3>{_e(dataset)} (table)</h3>",
           f"<p>Real train → real test (TRTR): accuracy {_num(trtr.get('accuracy'))}, "
           f"AUC {_num(trtr.get('auc'))}.</p>"]
    box = info.get("black_box")
    if box:
        out.append(f"<p>Black box (positive class {_e(box.get('positive_class', '?'))}): "
                   f"test accuracy {_num(box.get('test_accuracy'))}, "
                   f"AUC {_num(box.get('test_auc'))}.</p>")
    rows = _table_rows(info, trials)
    if rows:
        out.append(_table(TABLE_HEADER, [[_e(c) for c in row] for row in rows],
                          numeric=set(range(2, len(TABLE_HEADER)))))
        out.append(f"<p>{_e(FIELD_NOTE)}</p>")
    if (info.get("smote") or {}).get("skipped"):
        out.append(f"<p>SMOTE baseline skipped: {_e(info['smote']['skipped'])}</p>")
    return "".join(out)


TABLE_HEADER = ["family", "setting", "TSTR acc", "TSTR AUC", "real+synth acc",
                "real+synth AUC", "column shapes", "pair trends", "detection (XGBoost)",
                "DCR share", "DCR / holdout's"]
FIELD_NOTE = ("Column shapes: the mean KSComplement / TVComplement over columns; pair trends: "
              "the mean CorrelationSimilarity / ContingencySimilarity over column pairs "
              "(SDMetrics' definitions, 1 = identical); detection: synthcity's XGBoost "
              "detection AUC against the real train rows (0.5 = indistinguishable); DCR share: "
              "the share of synthetic rows nearer the train rows than the test rows (TabSyn's; "
              "0.5 = as far as fresh rows); DCR / holdout's: the synthetic rows' median distance "
              "to the closest train row over the test rows' (1 = as far as fresh rows, under "
              "0.9 = close to copying). SMOTE is the interpolation baseline, fitted on the "
              "same train rows. select/score (tabular-a, tabular-forest) is 1 lower at an "
              "evaluation whose rows sat nearer the fit rows than 0.9 of the val rows' distance "
              "(its privacy guard), so a value under 0 means no evaluation cleared it.")


def _table_rows(info: dict, trials: list[dict]) -> list[list[str]]:
    """A table's headline rows as plain text: each family's chosen trial, then SMOTE's."""
    def cells(name, setting, scores):
        field = scores.get("field") or {}
        return [name, setting, _num(_get(scores, "tstr", "accuracy")),
                _num(_get(scores, "tstr", "auc")),
                _num(_get(scores, "real_plus_synthetic", "accuracy")),
                _num(_get(scores, "real_plus_synthetic", "auc")),
                _num(field.get("column_shapes")), _num(field.get("column_pair_trends")),
                _num(field.get("detection_xgb")), _num(field.get("dcr_share")),
                _num(field.get("dcr_ratio"))]

    rows = [cells(str(t.get("family", "")) + (" (the farm's pick)" if t.get("pick") else ""),
                  str(t.get("setting", "")), t)
            for t in trials if t.get("chosen")]
    smote = info.get("smote") or {}
    if rows and smote and not smote.get("skipped"):
        rows.append(cells("SMOTE (baseline)", "5 neighbours", smote))
    return rows


TRIAL_HEADER = ["✓", "trial", "family", "dataset", "class", "setting", "status", "best epoch",
                "chosen by", "value", "TSTR acc", "TSTR AUC", "real+synth acc",
                "detection AUC", "KID", "judge acc", "pools"]


def _epoch_cell(t: dict) -> str:
    """The kept epoch, where a scheduler stopped the trial early, and when PBT gave it another
    trial's weights."""
    if t.get("best_epoch") is None:
        return "–"
    cell = str(t["best_epoch"])
    last, planned = t.get("last_epoch"), t.get("epochs")
    if last is not None and planned is not None and last < planned:
        cell += f" (stopped at {last}/{planned})"
    if t.get("exploits"):
        cell += " (took #" + ", #".join(f"{e['donor']}'s weights at {e['epoch']}"
                                        for e in t["exploits"]) + ")"
    return cell


def _trial_cells(t: dict) -> list[str]:
    """One trial as plain-text cells (escaped by the caller's format)."""
    m = t.get("metrics") or {}
    select = t.get("select_metric") or ""
    return ["✓" if _chosen(t) else "", str(t.get("trial", "")), str(t.get("family", "")),
            str(t.get("dataset", "")), str(t.get("class") or "all"), str(t.get("setting", "")),
            str(t.get("status", "")),
            _epoch_cell(t), select, _num(m.get(select), ".4g"),
            _num(_get(t, "tstr", "accuracy")), _num(_get(t, "tstr", "auc")),
            _num(_get(t, "real_plus_synthetic", "accuracy")),
            _num(m.get("detection_auc")), _num(_metric(m, "kid", "kid/mean"), ".4g"),
            _num(_metric(m, "judge_accuracy", "judge_accuracy/mean")),
            ", ".join(map(str, t.get("pools") or []))]


def _trials_section(summary: dict) -> str:
    trials = summary.get("trials") or []
    if not trials:
        return ""
    rows, classes = [], []
    first_metric = TRIAL_HEADER.index("chosen by")
    for t in trials:
        cells = [_e(c) for c in _trial_cells(t)]
        if t.get("status") == "error" or t.get("error"):
            span = len(TRIAL_HEADER) - first_metric
            cells = cells[:first_metric] + [
                f'<td class="error" colspan="{span}">{_e(t.get("error") or "failed")}</td>']
        rows.append(cells)
        classes.append("chosen" if _chosen(t) else "")
    return ("<h2>Trials</h2><p>✓ marks the trials whose best epoch is used: the chosen table "
            "generators, and the image trials that fill the listed pools.</p>"
            + _table(TRIAL_HEADER, rows, classes, numeric=set(range(7, 16)) - {8}))


def _images_section(summary: dict, figures: _Figures) -> str:
    parts = [_image_dataset_section(d, ev, figures, _trials_of(summary, d))
             for d, ev in _image_datasets(summary).items()]
    return "<h2>Images</h2>\n" + "\n".join(parts) if parts else ""


def _image_dataset_section(dataset: str, ev: dict, figures: _Figures,
                           trials: list[dict]) -> str:
    figs = ev.get("figures") or {}
    out = [f"<h3>{_e(dataset)}</h3>"]
    if figs.get("classes"):
        out += ["<h4>Real and synthetic images per class</h4>",
                _figure_block(figures, [("real vs synthetic, per class", figs["classes"])])]
    confusions = _confusion_items(ev)
    if confusions:
        out += ["<h4>Confusion matrices (held-out real test images)</h4>",
                _figure_block(figures, confusions)]
    out.append(_per_class_table(ev))
    tsne = [(key.removeprefix("tsne/"), path) for key, path in figs.items()
            if key.startswith("tsne/")]
    if tsne:
        out += ["<h4>t-SNE: real vs synthetic, per pool</h4>", _figure_block(figures, tsne)]
    other = [(key, path) for key, path in figs.items()
             if key != "classes" and not key.startswith("tsne/")]
    if other:
        out += ["<h4>Other figures</h4>", _figure_block(figures, other)]
    trial_figs = [t for t in trials if t.get("figures")]
    for t in trial_figs:
        out += [f"<h4>{_e(t.get('trial', ''))}</h4>",
                _figure_block(figures, list(t["figures"].items()))]
    return "\n".join(o for o in out if o)


def _confusion_items(ev: dict) -> list[tuple[str, str]]:
    items = [("ceiling: trained on real images", _get(ev, "ceiling", "figure"))]
    for pool, p in _trained_pools(ev):
        items += [(f"{pool}: CAS (trained on synthetic)", _get(p, "cas", "figure")),
                  (f"{pool}: real + synthetic", _get(p, "real_plus_synthetic", "figure"))]
    return [(c, path) for c, path in items if path]


def _per_class_table(ev: dict) -> str:
    ceiling = _get(ev, "ceiling", "per_class") or {}
    pools = [(p, _get(info, "cas", "per_class") or {}) for p, info in _trained_pools(ev)]
    names = list(ev.get("classes") or ceiling or (pools[0][1] if pools else []))
    if not names:
        return ""
    header = ["class", "ceiling"] + [f"CAS {_e(p)}" for p, _ in pools]
    rows = [[_e(c), _num(ceiling.get(c))] + [_num(per.get(c)) for _, per in pools]
            for c in names]
    return ("<h4>Per-class accuracy on held-out real images</h4>"
            + _table(header, rows, numeric=set(range(1, len(header)))))


def _curves_section(summary: dict, figures: _Figures) -> str:
    figs = summary.get("figures") or {}
    curves = [(key.removeprefix("curves/"), path) for key, path in figs.items()
              if key.startswith("curves/")]
    other = [(key, path) for key, path in figs.items() if not key.startswith("curves/")]
    out = []
    if curves:
        out += ["<h2>Curves</h2><p>The selection metric per epoch, one line per trial; the dot "
                "is the epoch each trial exported.</p>", _figure_block(figures, curves)]
    if other:
        out += ["<h2>Other figures</h2>", _figure_block(figures, other)]
    return "\n".join(out)


def _tables_section(summary: dict, figures: _Figures) -> str:
    parts = []
    for dataset, info in _table_datasets(summary).items():
        out = []
        box_figs = _get(info, "black_box", "figures") or {}
        if box_figs:
            out += ["<h4>Black box</h4>", _figure_block(figures, list(box_figs.items()))]
        for t in _trials_of(summary, dataset):
            if t.get("figures"):
                mark = " ✓ chosen" if t.get("chosen") else ""
                out += [f"<h4>{_e(t.get('trial', ''))}{mark}</h4>",
                        _figure_block(figures, list(t["figures"].items()))]
        if out:
            parts.append(f"<h3>{_e(dataset)}</h3>\n" + "\n".join(out))
    return "<h2>Tables</h2>\n" + "\n".join(parts) if parts else ""


def _regenerate_command(summary: dict, summary_path: Path) -> str:
    home = summary.get("storage")  # a bucket's URI when the experiment lives in one
    storage = parent(home) if home and is_uri(home) else summary_path.resolve().parent.parent
    return (f"python run_farm.py --report-only --name {shlex.quote(str(summary.get('name', '')))}"
            f" --storage-path {shlex.quote(str(storage))}")


def _footer(summary: dict, summary_path: Path) -> str:
    home = summary.get("storage")
    made_from = join(home, "summary.json") if home and is_uri(home) else summary_path.resolve()
    return (f"<footer><p>Made from <code>{_e(made_from)}</code>. Regenerate with "
            f"<code>{_e(_regenerate_command(summary, summary_path))}</code></p></footer>")


# ---------------------------------------------------------------------------------------------
# Markdown


def _md(value) -> str:
    """Text safe inside a markdown table cell (markdown passes HTML through, so escape it too)."""
    text = html.escape(str(value), quote=False)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(row) + " |" for row in rows] + [""])


def _render_markdown(summary: dict, summary_path: Path, figures: _Figures) -> str:
    seconds = summary.get("seconds")
    lines = [f"# GAN Farm: {_md(summary.get('name', 'experiment'))}", "",
             f"Preset {_md(summary.get('preset', '?'))}, created {_md(summary.get('created', '?'))}"
             + (f", {seconds:.0f} s" if _finite(seconds) else "")
             + (f", {_size(summary['disk_bytes'])} on disk" if summary.get("disk_bytes") else "")
             + ". "
             "The full report with every figure is `report.html`.", ""]
    if summary.get("phases"):
        went = format_phases(summary["phases"], summary.get("phase_use"))
        lines += [f"Where the time went: {went}.", ""]
    lines += _md_headline(summary)
    lines += _md_trials(summary)
    lines += _md_figures(summary, figures)
    lines += ["---", f"Summary: `{summary_path.resolve()}`. Regenerate with "
              f"`{_regenerate_command(summary, summary_path)}`", ""]
    return "\n".join(lines)


def _md_headline(summary: dict) -> list[str]:
    lines = []
    for dataset, info in (summary.get("datasets") or {}).items():
        if info.get("kind") == "image":
            ev = _image_datasets(summary).get(dataset)
            judge = info.get("judge") or {}
            lines += [f"### {_md(dataset)} (images)", "",
                      f"Judge accuracy {_num(judge.get('test_accuracy'))} "
                      f"(chance {_num(judge.get('chance'))}).", ""]
            if ev:
                rows = []
                for pool, p in _pool_rows(ev):
                    label = f"**{_md(pool)}**" if pool == ev.get("best_pool") else _md(pool)
                    if "same_as" in p:
                        rows.append([label, f"same as {_md(p['same_as'])}"]
                                    + [""] * (len(POOL_HEADER) - 2))
                        continue
                    rows.append([label] + [_md(c) for c in _pool_numbers(p, ev)])
                lines += _md_table(POOL_HEADER, rows)
                for line in (_protocol_line(ev, html=False), _control_line(ev, html=False)):
                    if line:
                        lines += [line, ""]
                lines += [f"- {v}" for v in _verdict_lines(ev)] + ([""] if _verdict_lines(ev)
                                                                   else [])
        elif info.get("kind") == "table":
            trtr = info.get("trtr") or {}
            lines += [f"### {_md(dataset)} (table)", "",
                      f"TRTR accuracy {_num(trtr.get('accuracy'))}, AUC {_num(trtr.get('auc'))}.",
                      ""]
            rows = _table_rows(info, _trials_of(summary, dataset))
            if rows:
                lines += _md_table(TABLE_HEADER, [[_md(c) for c in row] for row in rows])
                lines += [FIELD_NOTE, ""]
    return (["## Headline", ""] + lines) if lines else []


def _md_trials(summary: dict) -> list[str]:
    trials = summary.get("trials") or []
    if not trials:
        return []
    rows = []
    for t in trials:
        cells = [_md(c) for c in _trial_cells(t)]
        if t.get("status") == "error" or t.get("error"):
            error = str(t.get("error") or "failed").strip().splitlines() or ["failed"]
            first = TRIAL_HEADER.index("chosen by")
            cells = cells[:first] + [f"failed: {_md(error[-1][:200])}"] \
                + [""] * (len(TRIAL_HEADER) - first - 1)
        rows.append(cells)
    return ["## Trials", ""] + _md_table(TRIAL_HEADER, rows)


def _md_figures(summary: dict, figures: _Figures) -> list[str]:
    """The overview pictures inline: per-class grids and curves; the rest are in report.html."""
    items = [(f"{d}: real vs synthetic per class", _get(ev, "figures", "classes"))
             for d, ev in _image_datasets(summary).items()]
    items += [(key, path) for key, path in (summary.get("figures") or {}).items()
              if key.startswith("curves/")]
    shown = [figures.markdown(path, caption) for caption, path in items if path]
    return (["## Figures", ""] + [s + "\n" for s in shown]) if shown else []
