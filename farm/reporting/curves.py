"""Every trial's selection metric over its epochs, one picture per family, chosen epochs marked.

Read back from the `progress.csv` Tune writes in each trial folder, so the picture shows what was
reported, not a copy kept elsewhere."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from farm.reporting import figures


def read_series(trial_dir: str | Path, metric: str) -> tuple[list, list] | None:
    """(epochs, values) of one metric from a trial's progress.csv; None when absent."""
    path = Path(trial_dir) / "progress.csv"
    try:
        frame = pd.read_csv(path)
    except (FileNotFoundError, pd.errors.EmptyDataError):
        return None
    if metric not in frame or "epoch" not in frame:
        return None
    frame = frame[["epoch", metric]].dropna()
    return frame["epoch"].astype(int).tolist(), frame[metric].astype(float).tolist()


def write_family_curves(trials: list[dict], folder: Path, writer=None) -> dict[str, str]:
    """{"curves/<family>": png} for every family with at least one readable trial; with a
    TensorBoard `writer` (anything with `add_figure`), the same pictures there too."""
    paths = {}
    for family in dict.fromkeys(t["family"] for t in trials):
        mine = [t for t in trials if t["family"] == family and t.get("trial_dir")]
        metric = mine[0]["select_metric"] if mine else None
        series, chosen = {}, {}
        for t in mine:
            values = read_series(t["trial_dir"], metric)
            if values is None:
                continue
            label = t["class"] or t["trial"]
            if t["class"] and t["setting"] != "default":
                label = f"{t['class']} {t['setting']}"
            elif not t["class"]:
                label = f"{t['dataset']} {t['setting']}"
            series[label] = values
            if t.get("best_epoch") is not None:
                chosen[label] = t["best_epoch"]
        if series:
            fig = figures.curves_figure(series, chosen, metric, mine[0]["select_mode"],
                                        title=f"{family}: {metric} over epochs (dots: chosen)")
            if writer is not None:
                writer.add_figure(f"curves/{family}", fig, close=False)
            paths[f"curves/{family}"] = str(figures.save(fig, folder / f"curves-{family}.png"))
    return paths
