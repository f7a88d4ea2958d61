"""The `full` preset's wall time on N GPUs, extrapolated from measured step times.

bench/gpu_check.py measures one training step per image family and trial variant, one
evaluation, one tabular epoch (bench/speed.py) and how much a trial slows down when it shares
a GPU (bench/packing.py); this module turns them into hours for the `full` preset's plan, and
writes down how, so the estimate can be checked against a real run:

    T_i    = epochs_i x (steps/epoch_i x step s + evaluation s / eval_every_i)   image trial
    T_i    = epochs_i x epoch s                                                  table trial
    sigma  = P x K / sum of T over packing's trials   (its trial phase P, K trials at once)
    over   = (P x K - sum of T) / packing's trial-epochs
    wall N = max(sum_i T'_i / min(N / s, trials), max_i T'_i)

with T' = T + over x epochs (low) and T' = sigma x T (high), at the packing share s with the
least device time per trial. Nothing here imports torch.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from farm.config.family_params import MODALITY, params_from  # noqa: E402
from farm.config.load import load_config  # noqa: E402
from farm.config.plan import plan_trials  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
FIDS30_FIT = 21  # a FIDS30 class's median fit images (32 photos: 26 train, 5 of them val)
NOT_COUNTED = [
    "Ray's start, data preparation and the judge (the full preset trains a ResNet18 for "
    "`data.images.judge.epochs` epochs once per image dataset)",
    "export and scoring of the chosen checkpoints (tables: SMOTE, XGBoost detection, field "
    "scores), the evaluator (one classifier per pool and classifier seed, a Ray Train job) "
    "and the report",
    "the tabular trials' evaluations (speed.py times their epochs only)",
    "waits between waves of trials beyond what packing's trial phase holds",
]


def fit_images(data_dir: Path | None, images_cfg: dict) -> dict[str, int]:
    """About how many images each FIDS30 class gives its GANs (its fit split: train minus
    val, cut as farm/data/split.py cuts them); 30 classes of the median when no data."""
    root = data_dir / "fids30" if data_dir else None
    if root is None or not root.is_dir():
        return {f"class{k}": FIDS30_FIT for k in range(30)}
    test, val = images_cfg["test_fraction"], images_cfg["val_fraction"]
    counts = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        n = sum(1 for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        train = n - round(n * test)
        counts[folder.name] = train - (min(max(1, round(val * train)), train - 1) if val else 0)
    return counts


def steps_per_epoch(images: int, batch: int) -> int:
    """As farm.gan.gan_loop.shuffled_batches cuts an epoch (a ragged last batch dropped)."""
    return images // batch if images > batch else 1


class Measured:
    """Speed records by (family, variant), the family's median standing in for a variant
    that was not timed."""

    def __init__(self, records: list[dict], section: str, key: str):
        self.by = {(r["family"], r["variant"]): r for r in records
                   if r.get("section") == section and r.get(key) is not None}
        self.key = key

    def get(self, family: str, variant: str | None) -> dict | None:
        if (family, variant) in self.by:
            return self.by[(family, variant)]
        mine = [r for (f, _), r in self.by.items() if f == family]
        if not mine:
            return None
        return {**mine[0], self.key: statistics.median(r[self.key] for r in mine)}


def trial_seconds(trial: dict, fit: dict[str, int], steps: Measured, evals: Measured,
                  tables: Measured | None = None) -> float | None:
    """T_i: one trial's seconds alone on the device; None when its family was not timed."""
    family, variant = trial["family"], trial["variant"]
    if MODALITY[trial["kind"]] == "table":
        row = tables.get(family, variant)
        return trial["epochs"] * row["ms_epoch"] / 1000 if row else None
    step = steps.get(family, variant)
    if not step:
        return None
    batch = params_from(trial["kind"], trial["params"]).batch_size
    images = fit[trial["class"]] if trial.get("class") else sum(fit.values())
    per_epoch = steps_per_epoch(images, batch) * step["farm_ms_step"] / 1000
    evaluation = evals.get(family, variant)
    if evaluation:  # measured on a few classes: an all-class family scores every class
        scale = 1 if trial.get("class") else len(fit) / evaluation["classes"]
        per_epoch += evaluation["s_per_eval"] * scale / trial["eval_every"]
    return trial["epochs"] * per_epoch


def sharing(rows: list[dict], fit: dict[str, int], steps: Measured, evals: Measured,
            epochs: int, eval_every: int) -> list[dict]:
    """sigma per packing row: its trials' wall seconds shared (P x K) over their seconds
    alone (speed.py's fruit-pairs `report` step and evaluation on the same classes)."""
    step = steps.get("fruit-pairs", "report")
    out = []
    for row in rows:
        alone = None
        if step:
            alone = sum(trial_seconds({"family": "fruit-pairs", "kind": "fruit-pairs",
                                       "variant": "report", "class": name, "epochs": epochs,
                                       "eval_every": eval_every,
                                       "params": {"batch_size": step["batch"]}},
                                      fit, steps, evals)
                        for name in list(fit)[:row["classes"]])
        shared = row["trial phase s"] * row["trials at once"]
        out.append({**row, "alone s": alone, "sigma": shared / alone if alone else None,
                    "overhead s / epoch": (shared - alone) / row["trial-epochs"] if alone
                    else None})
    return out


def best_share(rows: list[dict]) -> dict | None:
    """The row whose trials cost the least device time: sigma x share."""
    usable = [r for r in rows if r.get("sigma")]
    return min(usable, key=lambda r: r["sigma"] * r["share"]) if usable else None


def wall_seconds(seconds: list[float], slots: float) -> float:
    """List scheduling's estimate: the work spread over the slots, never under the longest."""
    if not seconds:
        return 0.0
    return max(sum(seconds) / min(slots, len(seconds)), max(seconds))


def estimate(records: list[dict], packing_rows: list[dict], data_dir: Path | None,
             packing_epochs: int, packing_eval_every: int, gpus=(1, 4, 16)) -> dict:
    """The full preset's plan, each trial's seconds alone, what sharing costs, and the wall
    hours per GPU count under two readings of that cost: sigma x T (sharing slows every
    step: an upper bound for trials of many steps per epoch) and T + overhead per epoch
    (sharing costs a fixed time per epoch, as packing's one-step epochs measured it: a lower
    bound for them)."""
    config = load_config(REPO / "trials", "full")
    fit = fit_images(data_dir, config["data"]["images"])
    trials = plan_trials(config["families"], 0, None, {"fids30": tuple(fit)})
    steps, evals = Measured(records, "step", "farm_ms_step"), Measured(records, "eval",
                                                                        "s_per_eval")
    tables = Measured(records, "tabular", "ms_epoch")
    for trial in trials:
        trial["seconds"] = trial_seconds(trial, fit, steps, evals, tables)
    shared = sharing(packing_rows, fit, steps, evals, packing_epochs, packing_eval_every)
    best = best_share(shared)
    sigma, overhead, share = ((best["sigma"], best["overhead s / epoch"], best["share"])
                              if best else (1.0, 0.0, 0.25))
    timed = [t for t in trials if t["seconds"] is not None]
    upper = [sigma * t["seconds"] for t in timed]
    lower = [t["seconds"] + max(overhead, 0.0) * t["epochs"] for t in timed]
    return {"plan": plan_rows(trials), "packing": shared, "sigma": sigma,
            "overhead s / epoch": overhead, "share": share, "sigma measured": best is not None,
            "untimed trials": len(trials) - len(timed), "trials": len(trials),
            "classes": len(fit), "fit images": sum(fit.values()),
            "wall": [{"gpus": n, "slots": n / share,
                      "hours, T + overhead": wall_seconds(lower, n / share) / 3600,
                      "hours, sigma x T": wall_seconds(upper, n / share) / 3600}
                     for n in gpus]}


def plan_rows(trials: list[dict]) -> list[dict]:
    """Per family and variant: trials, epochs, trial-epochs and seconds alone (None: not
    timed)."""
    rows: dict = {}
    for t in trials:
        row = rows.setdefault((t["family"], t["variant"]), {
            "family": t["family"], "variant": t["variant"], "trials": 0, "trial-epochs": 0,
            "hours alone": 0.0})
        row["trials"] += 1
        row["trial-epochs"] += t["epochs"]
        if t["seconds"] is None or row["hours alone"] is None:
            row["hours alone"] = None
        else:
            row["hours alone"] += t["seconds"] / 3600
    return list(rows.values())


def formula_lines(result: dict, unit: str = "GPU") -> list[str]:
    """How the hours were reached, in words a reader can redo by hand."""
    share = result["share"]
    measured = (f"Taken at the share with the least device time per trial (sigma x share): "
                f"{share:g}, {1 / share:g} trials per {unit}, as if run with "
                f"`--gpus-per-trial {share:g}`; sigma = {result['sigma']:.2f}, overhead = "
                f"{result['overhead s / epoch']:.3f} s per trial-epoch"
                if result["sigma measured"] else
                "No packing row measured them: sharing is taken as free (sigma 1, no "
                f"overhead) at share {share:g}, so the hours are a lower bound")
    return [
        f"- Plan: `farm.config.plan.plan_trials` over `trials/` with the `full` preset: "
        f"{result['trials']} trials, {result['classes']} FIDS30 classes (about "
        f"{result['fit images']} fit images, the train split less val: what the GANs see), "
        "both tables.",
        "- One trial alone: `T = epochs x (steps/epoch x step s + evaluation s / eval_every)` "
        "for an image trial (steps/epoch from its fit images and batch; the step is "
        "speed.py's farm fp32 step of that family and variant, or the family's median where "
        "a variant was not timed; an evaluation timed on 3 classes is scaled to every class "
        "for an all-class family); `T = epochs x epoch s` for a table trial (German credit's "
        "epoch for both tables).",
        f"- Sharing a {unit}, from packing's own trials (trial phase P with K trials at once, "
        "against the same trials' T from speed.py): `sigma = P x K / sum T` and `overhead = "
        "(P x K - sum T) / their trial-epochs`; both hold Tune's per-epoch costs too. "
        f"{measured}.",
        "- `wall(N) = max(sum T' / min(N / share, trials), max T')`: the work spread over "
        "N / share slots, never under the longest trial, with `T' = T + overhead x epochs` "
        "(sharing costs a fixed time per epoch: low for trials of many steps per epoch) and "
        "`T' = sigma x T` (sharing slows every step: high for them; exact for packing's "
        "one-step fruit-pairs epochs either way).",
        "- Not counted: " + "; ".join(NOT_COUNTED) + ".",
    ]
