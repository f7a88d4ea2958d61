"""Do the farm's synthetic images help? The headline figures of a finished image run.

Reads the experiment's summary (the evaluator's protocol, ceiling, noise control and pools, each
over its classifier seeds) and asks two more questions of its checkpoints:

* Does usefulness rank checkpoints? For every all-class trial (one model for all classes), each
  checkpoint the run kept is drawn again (the export's own `draw_images`), a classifier is
  trained on those images alone with the evaluator's settings (one classifier seed) and tested
  on the held-out test split: that checkpoint's CAS. The Spearman correlation between the
  usefulness the run logged at those epochs (val slice) and that CAS, per trial, then their
  mean. The same for KID (sign flipped: lower KID should mean higher CAS), for comparison.
* Did keeping the best epoch pay? The kept checkpoint's CAS against the last one's, per trial.

Per-class pairs are counted for collapse instead (diversity at the kept epoch below 0.2). A
pair's CAS needs a whole pool, so the pairs enter the rank question only through their pool.

    .venv/bin/python bench/laptop_images.py results/<name> [--dataset fids30] [--out file.md]

Writes bench/results/laptop-images.json (see `FIELDS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import stats

from common import emit, git_commit
from image_epochs import COLLAPSED, prepared_dataset, reference_sets

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.config.classifiers import evaluator_config  # noqa: E402
from farm.evaluation.evaluate_pools import pool_usefulness  # noqa: E402
from farm.evaluation.evaluator import Task, fit_and_test  # noqa: E402
from farm.evaluation.pools import read_pool  # noqa: E402
from farm.gan.checkpoint import load_state  # noqa: E402
from farm.models.classifier import scores  # noqa: E402
from farm.pipeline.export import draw_images  # noqa: E402

RESULTS = REPO / "bench" / "results" / "laptop-images.json"
FIELDS = ("commit", "run_commit", "minutes", "ceiling", "ceiling_seeds", "noise_gain",
          "noise_gain_ci", "pools", "selection_spearman", "kid_spearman",
          "kept_beats_last_share", "collapsed_pair_classes", "protocol", "test_images")


def _trial_dir(experiment: Path, trial: dict) -> Path:
    return experiment / "tune" / trial["trial"]


def checkpoints(experiment: Path, trial: dict) -> list[tuple[int, Path]]:
    """(epoch, folder) of every checkpoint the run kept for a trial, by epoch."""
    found = []
    for folder in sorted(_trial_dir(experiment, trial).glob("checkpoint_*")):
        if (folder / "state.pt").exists():
            found.append((int(load_state(folder)["epoch"]), folder))
    return sorted(found)


def logged(experiment: Path, trial: dict, metric: str) -> dict[int, float]:
    """{epoch: value} of a metric the run reported (the last report of an epoch wins)."""
    frame = pd.read_csv(_trial_dir(experiment, trial) / "progress.csv")
    if metric not in frame:
        return {}
    frame = frame[["epoch", metric]].dropna()
    return dict(zip(frame["epoch"].astype(int), frame[metric].astype(float)))


def checkpoint_cas(experiment: Path, trial: dict, folder: Path, train, test: Task, config,
                   per_class: int, reference: int, judge_filter: int = 1) -> float:
    """CAS of one checkpoint: its images drawn as the export draws them, one classifier."""
    spec = json.loads((_trial_dir(experiment, trial) / "params.json").read_text())["trial"]
    by_class, _, _ = draw_images(spec, folder, train, per_class, judge_filter)
    x = np.concatenate([by_class[name] for name in train.classes])
    y = np.concatenate([np.full(len(by_class[name]), label, dtype=np.int64)
                        for label, name in enumerate(train.classes)])
    out = fit_and_test(Task("checkpoint", x, y), test, len(train.classes), config,
                       torch.device("cpu"), say=lambda _line: None, reference_images=reference)
    return scores(out["matrix"], range(len(train.classes)))["accuracy"]


def mean_cas(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The first file's rows, each checkpoint's `cas` the mean over every file's (each file one
    classifier seed); the files must rank the same checkpoints."""
    rows = frames[0].copy()
    key = ["trial", "epoch"]
    for other in frames[1:]:
        if sorted(map(tuple, other[key].values)) != sorted(map(tuple, rows[key].values)):
            raise SystemExit("--rows-from files rank different checkpoints")
    stacked_cas = pd.concat([f[key + ["cas"]] for f in frames]).groupby(key)["cas"].mean()
    rows["cas"] = [stacked_cas[(t, e)] for t, e in zip(rows["trial"], rows["epoch"])]
    return rows


def grown_trials(experiment: Path, dataset: str) -> list[dict]:
    """The all-class trials of a run that has not finished (no summary yet), from Tune's
    folders: what `rank_checkpoints` needs of each (kept and last epochs are read from the
    summary later, when `--rows-from` merges the rows)."""
    trials = []
    for folder in sorted((experiment / "tune").glob("*/params.json")):
        spec = json.loads(folder.read_text())["trial"]
        if spec["dataset"] == dataset and spec.get("class") is None:
            trials.append({"trial": folder.parent.name, "dataset": dataset, "class": None,
                           "status": "ok", "setting": spec["tag"], "best_epoch": None,
                           "last_epoch": None})
    return trials


def rank_checkpoints(experiment: Path, trials: list[dict], dataset: str, data_dir: str | None,
                     say=print, passes: int | None = None, done: list[dict] | None = None,
                     keep=lambda rows: None, seed: int | None = None) -> list[dict]:
    """Per all-class trial: each kept checkpoint's logged usefulness and KID, and its CAS
    (one classifier seed, the evaluator's CAS passes unless `passes` says otherwise). Rows in
    `done` are kept and their checkpoints not trained again; `keep(rows)` is called after each
    checkpoint, so a stopped ranking goes on where it stopped."""
    stored = json.loads((experiment / "run.json").read_text())
    config = dataclasses.replace(evaluator_config(stored["config"].get("evaluator")), seeds=1)
    config = dataclasses.replace(config, epochs=passes or config.cas_passes)
    if seed is not None:  # another classifier seed: rows to average with the first's
        config = dataclasses.replace(config, seed=seed)
    images_cfg = stored["config"]["data"].get("images", {})
    per_class = int(images_cfg.get("synthetic_per_class", 32))
    judge_filter = int(images_cfg.get("judge_filter", 1))
    prepared, _ = prepared_dataset(experiment, dataset, data_dir)
    reference = len(prepared.split.train)  # the ceiling's train images: the step budget
    train, test_view = reference_sets(experiment, None, dataset, data_dir, prepared)
    test = Task("test", test_view.images, test_view.labels)
    rows = list(done or [])
    finished = {(r["trial"], r["epoch"]) for r in rows}
    for trial in trials:
        if trial["dataset"] != dataset or trial.get("class") is not None \
                or trial["status"] != "ok":
            continue
        useful = logged(experiment, trial, "useful")
        kid = logged(experiment, trial, "kid/mean")
        for epoch, folder in checkpoints(experiment, trial):
            if (trial["trial"], epoch) in finished:
                continue
            started = time.perf_counter()
            cas = checkpoint_cas(experiment, trial, folder, train, test, config, per_class,
                                 reference, judge_filter)
            rows.append({"trial": trial["trial"], "setting": trial["setting"], "epoch": epoch,
                         "kept": epoch == trial["best_epoch"],
                         "last": epoch == trial["last_epoch"], "useful": useful.get(epoch),
                         "kid": kid.get(epoch), "cas": cas})
            say(f"  {trial['trial']} epoch {epoch}: useful {useful.get(epoch)}, CAS {cas:.3f} "
                f"({time.perf_counter() - started:.0f} s)")
            keep(rows)
    return rows


def spearman_per_trial(rows: pd.DataFrame, metric: str, sign: float = 1.0) -> dict[str, float]:
    out = {}
    for trial, group in rows.groupby("trial"):
        group = group.dropna(subset=[metric])
        if len(group) >= 3 and group["cas"].nunique() > 1 and group[metric].nunique() > 1:
            out[trial] = float(stats.spearmanr(sign * group[metric], group["cas"]).statistic)
    return out


def kept_vs_last(rows: pd.DataFrame) -> dict[str, str]:
    """Per trial: "better", "tie" or "worse" (kept CAS against last); trials whose kept epoch
    is the last are left out (nothing was chosen)."""
    out = {}
    for trial, group in rows.groupby("trial"):
        kept, last = group[group["kept"]], group[group["last"]]
        if len(kept) and len(last) and kept["epoch"].iloc[0] != last["epoch"].iloc[0]:
            a, b = kept["cas"].iloc[0], last["cas"].iloc[0]
            out[trial] = "better" if a > b else "tie" if a == b else "worse"
    return out


def collapsed_pairs(summary: dict, dataset: str) -> dict[str, int]:
    """Per fruit-pairs setting: classes whose kept epoch's diversity is below COLLAPSED."""
    out: dict[str, int] = {}
    for trial in summary["trials"]:
        if trial["dataset"] == dataset and trial.get("class") is not None \
                and trial["status"] == "ok":
            diversity = (trial.get("metrics") or {}).get("diversity")
            out.setdefault(trial["setting"], 0)
            if diversity is not None and diversity < COLLAPSED:
                out[trial["setting"]] += 1
    return out


def headline(summary: dict, dataset: str, train=None) -> dict:
    """The summary's figures; `train` (the run's ImageData) scores a pool's own usefulness on
    the val slice where the run predates that column."""
    ev = summary["evaluator"]["datasets"][dataset]
    control = ev.get("control_gain") or {}
    pools = []
    for name, pool in ev["pools"].items():
        if "same_as" in pool or "not_trained" in pool:
            continue
        gain = pool.get("gain") or {}
        useful = pool.get("usefulness")
        if useful is None and train is not None:
            useful = pool_usefulness(train, *read_pool(Path(pool["dir"]), train.classes))
        pools.append({"name": name, "cas": pool["cas"]["accuracy"],
                      "cas_seeds": pool["cas"].get("accuracies"),
                      "cas_ratio": pool.get("cas_ratio"), "gain": gain.get("mean"),
                      "gain_ci": gain.get("ci"), "verdict": pool.get("verdict"),
                      "usefulness": useful, "members_usefulness": pool.get("mean_usefulness"),
                      "choice_accuracy": pool.get("choice_accuracy"),
                      "chosen_by_farm": name == ev.get("best_pool")})
    # what the probe (the pool's own usefulness) would pick among every pool the farm chose
    # from, trained for the final figures or not
    scored = {n: p.get("usefulness") for n, p in ev["pools"].items() if "same_as" not in p}
    if any(v is None for v in scored.values()) and train is not None:
        scored = {p["name"]: p["usefulness"] for p in pools}
    scored = {n: v for n, v in scored.items() if v is not None}
    by_rule = max(scored, key=scored.get) if scored else None
    for p in pools:
        p["chosen_by_usefulness"] = p["name"] == by_rule
    return {"run_commit": summary.get("commit"), "minutes": round(summary["seconds"] / 60, 1),
            "ceiling": ev["ceiling"]["accuracy"],
            "ceiling_seeds": ev["ceiling"].get("accuracies"),
            "noise_gain": control.get("mean"), "noise_gain_ci": control.get("ci"),
            "pools": pools, "protocol": ev.get("protocol"), "test_images": ev["test_images"],
            "best_pool_rule": ev.get("best_pool_rule"), "probe_would_choose": by_rule,
            # every pool the farm chose among, trained for the final figures or not
            "candidates": [{"name": name, "usefulness": pool.get("usefulness"),
                            "choice_accuracy": pool.get("choice_accuracy"),
                            "chosen_by_farm": name == ev.get("best_pool")}
                           for name, pool in ev["pools"].items() if "same_as" not in pool]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--dataset", default="fids30")
    parser.add_argument("--data-dir", help="where the dataset is, if not where the run found it")
    parser.add_argument("--skip-checkpoints", action="store_true",
                        help="only the summary's figures (no per-checkpoint CAS)")
    parser.add_argument("--passes", type=int,
                        help="passes of each checkpoint's CAS classifier (default: the "
                             "evaluator's CAS passes)")
    parser.add_argument("--checkpoints-only", type=Path, metavar="ROWS_JSON",
                        help="rank the checkpoints of a run still in its evaluator (no summary "
                             "yet) and write the rows here, one checkpoint at a time (rows "
                             "already there are kept); nothing else")
    parser.add_argument("--classifier-seed", type=int,
                        help="with --checkpoints-only: this classifier seed (default: the "
                             "evaluator's first)")
    parser.add_argument("--rows-from", type=Path, metavar="ROWS_JSON", nargs="+",
                        help="the rows --checkpoints-only wrote, instead of ranking again; with "
                             "several files (other classifier seeds), each checkpoint's CAS is "
                             "their mean")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.checkpoints_only:
        out = args.checkpoints_only
        done = json.loads(out.read_text()) if out.exists() else []

        def keep(rows):
            out.write_text(json.dumps(rows, indent=1, default=float) + "\n")

        keep(rank_checkpoints(args.experiment, grown_trials(args.experiment, args.dataset),
                              args.dataset, args.data_dir, passes=args.passes, done=done,
                              keep=keep, seed=args.classifier_seed))
        return
    summary = json.loads((args.experiment / "summary.json").read_text())
    train, _ = reference_sets(args.experiment, summary, args.dataset, args.data_dir)
    result = {"commit": git_commit(), **headline(summary, args.dataset, train),
              "collapsed_pair_classes": collapsed_pairs(summary, args.dataset)}
    rows = pd.DataFrame()
    if args.rows_from:
        rows = mean_cas([pd.DataFrame(json.loads(f.read_text())) for f in args.rows_from])
        ends = {t["trial"]: (t["best_epoch"], t["last_epoch"]) for t in summary["trials"]}
        rows["kept"] = [ends[t][0] == e for t, e in zip(rows["trial"], rows["epoch"])]
        rows["last"] = [ends[t][1] == e for t, e in zip(rows["trial"], rows["epoch"])]
    elif not args.skip_checkpoints:
        rows = pd.DataFrame(rank_checkpoints(args.experiment, summary["trials"], args.dataset,
                                             args.data_dir, passes=args.passes))
    by_use = spearman_per_trial(rows, "useful") if len(rows) else {}
    by_kid = spearman_per_trial(rows, "kid", -1.0) if len(rows) else {}
    beats = kept_vs_last(rows) if len(rows) else {}
    result.update(
        selection_spearman=float(np.mean(list(by_use.values()))) if by_use else None,
        selection_spearman_per_trial=by_use,
        kid_spearman=float(np.mean(list(by_kid.values()))) if by_kid else None,
        kept_beats_last_share=(float(np.mean([v != "worse" for v in beats.values()]))
                               if beats else None),
        kept_beats_last=beats, checkpoints=rows.to_dict("records"))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1, default=float) + "\n")
    one = 1 / result["test_images"]
    lines = [f"# Do the synthetic images help? {summary['name']} ({args.dataset})", "",
             f"- commit {result['commit']} (the run: {result['run_commit']}), "
             f"{result['minutes']} min",
             f"- protocol: {result['protocol']}",
             f"- {result['test_images']} test images: one is {one:.4f} of accuracy",
             f"- ceiling {result['ceiling']:.3f} (seeds "
             f"{' / '.join(f'{a:.3f}' for a in result['ceiling_seeds'] or [])})",
             f"- noise control gain {_signed(result['noise_gain'])} {_ci(result['noise_gain_ci'])}",
             f"- the farm's rule: {result.get('best_pool_rule') or '-'}",
             "- every pool it chose among (val slice): " + "; ".join(
                 f"{c['name']}{' (chosen)' if c['chosen_by_farm'] else ''} classifier "
                 f"{_num(c['choice_accuracy'])}, probe {_num(c['usefulness'])}"
                 for c in result.get("candidates") or []),
             "", "| pool | CAS | CAS / ceiling | gain [95%] | val accuracy (choice) | usefulness "
                 "(probe) | chosen by | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for p in result["pools"]:
        chosen = "the farm" if p["chosen_by_farm"] else ""
        if p["chosen_by_usefulness"]:
            chosen += ", the probe"
        lines.append(f"| {p['name']} | {p['cas']:.3f} | {_num(p['cas_ratio'])} | "
                     f"{_signed(p['gain'])} {_ci(p['gain_ci'])} | {_num(p['choice_accuracy'])} | "
                     f"{_num(p['usefulness'])} | {chosen.strip(', ')} | {p['verdict']} |")
    lines += ["", f"- collapsed pair classes (diversity < {COLLAPSED}): "
                  f"{result['collapsed_pair_classes']}",
              f"- usefulness vs checkpoint CAS, mean Spearman: {_num(result['selection_spearman'])}"
              f" per trial {_rounded(by_use)}",
              f"- KID vs checkpoint CAS (sign flipped), mean Spearman: "
              f"{_num(result['kid_spearman'])} per trial {_rounded(by_kid)}",
              f"- kept checkpoint's CAS >= last's (trials whose kept epoch is not the last): "
              f"{_num(result['kept_beats_last_share'])} ({beats})"]
    if len(rows):
        lines += ["", rows.to_markdown(index=False, floatfmt=".3f")
                  if _has_tabulate() else rows.to_string(index=False)]
    emit(lines, args.out)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _signed(value) -> str:
    return "–" if value is None else f"{value:+.3f}"


def _ci(ci) -> str:
    return "" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _rounded(values: dict) -> dict:
    return {k: round(v, 2) for k, v in values.items()}


if __name__ == "__main__":
    main()
