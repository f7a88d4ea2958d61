"""Pools: the synthetic image datasets the farm hands to a user, and to the evaluator.

A pool takes, for every class, the images of one trial's chosen checkpoint: the trial whose
images were most useful for that class (`useful`: a linear probe in the judge's feature space,
trained on the generated images, recognising the class's val-slice images, which no GAN and no
judge trained on), so choosing never looks at the test split. Runs made before the val slice
existed have no usefulness score and fall back to the lowest KID to the class's train images.
There is one pool per image family (per family and variant when a family grew several
variants, so that one setting can be compared with another on the same split) and one,
`best-per-class`, over all of them. Each is an ImageFolder (`<class>/<n>.png`) with a
`manifest.json` naming, for every file, the trial, checkpoint, epoch and seeds that made it.
A pool is written beside its final place and renamed into it whole.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from farm.infra.atomic import replacing_folder

BEST_PER_CLASS = "best-per-class"
MANIFEST = "manifest.json"
USEFUL = "useful"
RULE = ("for each class, the trial whose chosen epoch was most useful for that class (a linear "
        "probe in the judge's features, trained on its images, tested on the val slice)")
KID_RULE = ("for each class, the trial whose chosen epoch has the lowest KID for that class "
            "(judge features, real train split)")


def class_metric(trial: dict, name: str, metric: str = "kid") -> float | None:
    """A trial's `metric` for one class at its chosen epoch (None when it does not make it).
    A per-class trial reports `kid`; a conditional one `kid/<class>` for each class."""
    metrics = trial.get("metrics") or {}
    if trial.get("class") is not None:
        value = metrics.get(metric) if trial["class"] == name else None
    else:
        value = metrics.get(f"{metric}/{name}")
    return None if value is None or math.isnan(value) else float(value)


def class_kid(trial: dict, name: str) -> float:
    """The KID a trial scored for one class at its chosen epoch; inf when it does not make it."""
    value = class_metric(trial, name, "kid")
    return math.inf if value is None else value


def class_usefulness(trial: dict, name: str) -> float | None:
    """How well a trial's images taught the probe this class (val slice); None if not scored."""
    return class_metric(trial, name, USEFUL)


def best_members(trials: list[dict], classes) -> dict[str, dict]:
    """{class: trial} most useful for each class, or, when any candidate has no usefulness
    score (an older run), with the lowest KID (ties go to the earlier trial)."""
    members = {}
    for name in classes:
        makes = [t for t in trials if class_kid(t, name) < math.inf
                 or class_usefulness(t, name) is not None]
        if not makes:
            continue
        if all(class_usefulness(t, name) is not None for t in makes):
            members[name] = max(makes, key=lambda t: (class_usefulness(t, name),
                                                      -trials.index(t)))
        else:
            members[name] = min(makes, key=lambda t: (class_kid(t, name), trials.index(t)))
    return members


def pool_name(trial: dict, variants_of: dict[str, set]) -> str:
    """`<family>`, or `<family>.<variant>` when the family grew several named variants (so a
    setting such as differentiable augmentation can be compared with its absence)."""
    family = trial["family"]
    return f"{family}.{trial.get('variant')}" if len(variants_of[family]) > 1 else family


def candidates(trials: list[dict]) -> dict[str, list[dict]]:
    """{pool name: the trials it chooses from}: per family (and variant), then all of them."""
    usable = [t for t in trials if t.get("status") == "ok" and t.get("synthetic_dir")]
    variants_of: dict[str, set] = {}
    for t in usable:
        variants_of.setdefault(t["family"], set()).add(t.get("variant"))
    groups: dict[str, list[dict]] = {}
    for t in usable:
        groups.setdefault(pool_name(t, variants_of), []).append(t)
    if len(groups) > 1:
        groups[BEST_PER_CLASS] = usable
    return groups


def choose_pools(trials: list[dict], classes) -> dict[str, dict[str, dict]]:
    """{pool name: {class: trial}}: one pool per family (per family and variant when it grew
    several), then best-per-class over all."""
    return best_of(candidates(trials), classes)


def best_of(groups: dict[str, list[dict]], classes) -> dict[str, dict[str, dict]]:
    """{pool name: {class: trial}} from each group of candidates; empty pools dropped."""
    pools = {name: best_members(group, classes) for name, group in groups.items()}
    return {name: members for name, members in pools.items() if members}


def same_as(pools: dict[str, dict[str, dict]], name: str) -> str | None:
    """An earlier pool with exactly the same members, if any (then it need not be retrained)."""
    members = {c: t["trial"] for c, t in pools[name].items()}
    for other, its in pools.items():
        if other == name:
            return None
        if {c: t["trial"] for c, t in its.items()} == members:
            return other
    return None


def write_pool(folder: Path, pool: str, dataset: str, members: dict[str, dict]) -> dict:
    """Copy each member trial's images of its class into one ImageFolder with a manifest."""
    files = []
    with replacing_folder(folder) as staging:
        for name, trial in members.items():
            source = Path(trial["synthetic_dir"])
            records = [r for r in read_manifest(source)["files"] if r["class"] == name]
            (staging / name).mkdir()
            for i, record in enumerate(records):
                target = f"{name}/{i:04d}.png"
                shutil.copyfile(source / record["file"], staging / target)
                files.append({**record, "file": target, "source": str(source / record["file"]),
                              "kid": class_kid(trial, name),
                              "useful": class_usefulness(trial, name)})
        by_use = all(class_usefulness(t, c) is not None for c, t in members.items())
        manifest = {"pool": pool, "dataset": dataset, "rule": RULE if by_use else KID_RULE,
                    "members": {c: t["trial"] for c, t in members.items()}, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return {"dir": str(folder), "manifest": str(folder / MANIFEST), "images": len(files),
            "members": manifest["members"]}


def read_manifest(folder: Path) -> dict:
    return json.loads((Path(folder) / MANIFEST).read_text())


def read_pool(folder: Path, classes) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, H, W, 3], labels [N]) of a written pool, labels by `classes` order."""
    from PIL import Image

    index = {name: i for i, name in enumerate(classes)}
    images, labels = [], []
    for record in read_manifest(folder)["files"]:
        with Image.open(Path(folder) / record["file"]) as image:
            images.append(np.asarray(image.convert("RGB")))
        labels.append(index[record["class"]])
    return np.stack(images), np.asarray(labels, dtype=np.int64)
