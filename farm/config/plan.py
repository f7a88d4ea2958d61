"""Turning the checked configuration into the explicit list of trials the farm will grow.

The plan is data: one dict per trial (family, dataset, settings, epochs, seed, resources).
`--dry-run` prints it; the driver hands it to Tune as one grid axis.
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Iterable

from farm.config.family_params import MODALITY, SHARED_START_KINDS, kind_name, params_from
from farm.infra.errors import ConfigError


def select_families(config: dict, only: Iterable[str] | None) -> dict[str, dict]:
    families = config["families"]
    if not only:
        return dict(families)
    wanted = [name.strip() for name in only if name.strip()]
    unknown = [name for name in wanted if name not in families]
    if unknown:
        raise ConfigError(f"--only names unknown family {unknown[0]!r}; known: "
                          f"{', '.join(sorted(families))}")
    return {name: families[name] for name in wanted}


def _tag(values: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in values.items()) or "defaults"


DISTRIBUTIONS = {  # a searched value drawn at random when a family sets `samples`
    "uniform": lambda rng, lo, hi: rng.uniform(lo, hi),
    "loguniform": lambda rng, lo, hi: math.exp(rng.uniform(math.log(lo), math.log(hi))),
}


def _draw(rng: random.Random, values):
    if isinstance(values, dict):
        (name, (lo, hi)), = values.items()
        return float(f"{DISTRIBUTIONS[name](rng, lo, hi):.3g}")  # a tag a person can read
    return rng.choice(values)


def trial_seed(base_seed: int, family: str, dataset: str, class_name: str | None,
               setting: str, repeat: int) -> int:
    """A trial's seed from what the trial is, not where it sits in the plan, so that the same
    trial grows from the same seed whether it runs in the whole farm or alone under `--only`.
    Below 2**31: numpy's legacy seeding and every offset added to it stay in range."""
    identity = "|".join((family, dataset, class_name or "", setting, str(repeat)))
    return (base_seed * 1_000_003 + zlib.crc32(identity.encode())) % 2**31


def search_points(family: str, search: dict, samples: int | None, base_seed: int) -> list[dict]:
    """The settings a family tries: the whole grid, or `samples` random draws (lists are
    choices, {uniform: [a, b]} / {loguniform: [a, b]} ranges), the same for every dataset and
    class so that a scheduler compares like with like."""
    axes = sorted(search)
    if not samples:
        return [dict(zip(axes, point)) for point in itertools.product(*(search[a] for a in axes))]
    rng = random.Random(base_seed * 1_000_003 + zlib.crc32(family.encode()))
    return [{axis: _draw(rng, search[axis]) for axis in axes} for _ in range(samples)]


def plan_trials(families: dict[str, dict], base_seed: int,
                datasets_override: dict[str, list[str]] | None = None,
                classes: dict[str, tuple[str, ...]] | None = None) -> list[dict]:
    """Every (family, dataset, class, search point, seed) combination, in a stable order.

    `datasets_override` maps a modality ("table", "image") to the user's own datasets;
    `classes` gives each image dataset's classes for families that grow one trial per class.
    """
    trials = []
    for family, section in families.items():
        modality = MODALITY[section["kind"]]
        datasets = (datasets_override or {}).get(modality) or section.get("datasets") or []
        if not datasets:
            raise ConfigError(f"family {family!r} lists no datasets")
        points = search_points(family, section.get("search") or {}, section.get("samples"),
                               base_seed)
        parts = [(d, c) for d in datasets
                 for c in ((classes or {}).get(d, ()) if section.get("per_class") else (None,))]
        for dataset, class_name in parts:
            for chosen in points:
                variant = (section.get("variants") or {}).get(chosen.get("variant"), {})
                searched = {k: v for k, v in chosen.items() if k != "variant"}
                for repeat in range(section.get("seeds", 1)):
                    # Later wins: seed defaults < per-dataset < named variant < searched values.
                    params = {**section.get("params", {}),
                              **(section.get("per_dataset") or {}).get(dataset, {}),
                              **(variant or {}), **searched}
                    trials.append({
                        "family": family, "kind": section["kind"], "dataset": dataset,
                        "class": class_name, "variant": chosen.get("variant"),
                        "tag": _tag(chosen) + (f",seed#{repeat}" if repeat else ""),
                        "params": params, "epochs": section["epochs"],
                        "eval_every": section.get("eval_every", 10),
                        "seed": trial_seed(base_seed, family, dataset, class_name,
                                           _tag(chosen), repeat),
                        "resources": dict(section.get("resources") or {"cpu": 1}),
                        # the defaults filled here, once, for every reader of the spec
                        "select": {"metric": "select/score", "mode": "max",
                                   **(section.get("select") or {})},
                        "keep_checkpoints": section.get("keep_checkpoints", 2),
                        "scheduler": dict(section.get("scheduler") or {}),
                        "gang": section.get("gang", 1),  # farm.tune.gang
                    })
    for index, trial in enumerate(trials):
        trial["index"] = index
        _check_settings(trial)
    return trials


def _check_settings(trial: dict) -> None:
    """Build the trial's settings now, in the driver, so an impossible value is one line
    naming the family before any trial starts, not a failure inside every trial."""
    try:
        params = params_from(trial["kind"], trial["params"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"family {trial['family']!r} ({trial['tag']}): {error}") from None
    if getattr(params, "shared_start", 0) and kind_name(trial["kind"]) not in SHARED_START_KINDS:
        raise ConfigError(f"family {trial['family']!r} ({trial['tag']}): shared_start is a "
                          f"setting of {', '.join(SHARED_START_KINDS)} only; kind "
                          f"{trial['kind']!r} grows every trial from scratch")


def format_plan(trials: list[dict], gpus_available: bool) -> str:
    """A table a person can read before committing hours of compute."""
    rows = [("#", "family", "dataset", "class", "setting", "epochs", "cpu", "gpu")]
    for t in trials:
        gpu = t["resources"].get("gpu", 0) if gpus_available else 0
        rows.append((str(t["index"]), t["family"], t["dataset"], t.get("class") or "-",
                     t["tag"], str(t["epochs"]),
                     str(t["resources"].get("cpu", 1)), str(gpu)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)
