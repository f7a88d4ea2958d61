"""Pools: the synthetic image datasets the farm hands to a user, and to the evaluator.

A pool takes, for every class, the images of one trial's chosen checkpoint: the trial whose
images were most useful for that class (`useful`: a linear probe in the judge's feature space,
trained on the generated images, recognising the class's val-slice images, which no GAN and no
judge trained on), so choosing never looks at the test split. Runs made before the val slice
existed have no usefulness score and fall back to the lowest KID to the class's train images.
There is one pool per image family (per family and variant when a family grew several
variants, so that one setting can be compared with another on the same split) and one,
`best-per-class`, over all of them.

Where a family grew a class in several trials (GAN seeds), a `<family>-blend` pool takes the
class's images in turn from every one of them, as many as one trial exports. It picks nothing
per class: with 5 val images a class, picking per class chose noise (laptop-7: the pick scored
0.176 CAS where each seed's own checkpoint scored 0.25 to 0.28), and a blend's classes do not
carry one generator's look as a cue to their label.

Where several families grew the images, `all-blend` does the same over every trial of every
family: a class's images come in turn from each family's generators, which differ in what they
get wrong. On laptop-11 (3 conditional seeds, the per-class pairs) it scored CAS 0.330 against
the conditional blend's 0.297 (classifier seeds 0-5, bench/RESULTS.md).

Members are {class: [trial, ...]}: one trial for a pick, several for a blend. Each pool is an
ImageFolder (`<class>/<n>.png`) with a `manifest.json` naming, for every file, the trial,
checkpoint, epoch and seeds that made it. A pool is written beside its final place and renamed
into it whole.
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
BLEND = "-blend"
BLEND_RULE = ("for each class, its images in turn from every trial of the family that grew it, "
              "each at its chosen epoch; as many images as one trial exports")
ALL_BLEND = "all-blend"
ALL_BLEND_RULE = ("for each class, its images in turn from every trial of every family that grew "
                  "it, each at its chosen epoch; as many images as one trial exports")


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


def makes(trial: dict, name: str) -> bool:
    """Whether a trial grew images of class `name` (it has a score for it)."""
    return class_kid(trial, name) < math.inf or class_usefulness(trial, name) is not None


def best_members(trials: list[dict], classes) -> dict[str, list[dict]]:
    """{class: [trial]} most useful for each class, or, when any candidate has no usefulness
    score (an older run), with the lowest KID (ties go to the earlier trial)."""
    members = {}
    for name in classes:
        scored = [t for t in trials if makes(t, name)]
        if not scored:
            continue
        if all(class_usefulness(t, name) is not None for t in scored):
            best = max(scored, key=lambda t: (class_usefulness(t, name), -trials.index(t)))
        else:
            best = min(scored, key=lambda t: (class_kid(t, name), trials.index(t)))
        members[name] = [best]
    return members


def blend_members(trials: list[dict], classes) -> dict[str, list[dict]]:
    """{class: every trial that grew it}, in trial order."""
    members = {name: [t for t in trials if makes(t, name)] for name in classes}
    return {name: ts for name, ts in members.items() if ts}


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


def choose_pools(trials: list[dict], classes) -> dict[str, dict[str, list[dict]]]:
    """{pool name: {class: [trial, ...]}}: one pool per family (per family and variant when it
    grew several), best-per-class over all, and a blend per family that grew a class twice."""
    return best_of(candidates(trials), classes)


def best_of(groups: dict[str, list[dict]], classes) -> dict[str, dict[str, list[dict]]]:
    """{pool name: {class: [trial, ...]}} from each group of candidates: the per-class pick,
    `<group>-blend` for each family group where some class has several trials, and `all-blend`
    over every family's trials. Empty pools are dropped."""
    pools = {}
    for name, group in groups.items():
        pools[name] = best_members(group, classes)
        blend = blend_members(group, classes)
        if any(len(ts) > 1 for ts in blend.values()):
            pools[ALL_BLEND if name == BEST_PER_CLASS else name + BLEND] = blend
    return {name: members for name, members in pools.items() if members}


def grown_from(pool: str, groups: dict[str, list[dict]]) -> list[dict]:
    """The trials a pool chose from: its own group's, for `<group>-blend` that group's, for
    `all-blend` every family's."""
    if pool == ALL_BLEND:
        return groups[BEST_PER_CLASS]
    return groups[pool] if pool in groups else groups[pool.removesuffix(BLEND)]


def member_names(members: dict[str, list[dict]]) -> dict[str, list[str]]:
    """{class: [trial name, ...]}: a pool's members as the summary records them."""
    return {c: [t["trial"] for t in ts] for c, ts in members.items()}


def same_as(pools: dict[str, dict[str, list[dict]]], name: str) -> str | None:
    """An earlier pool with exactly the same members, if any (then it need not be retrained)."""
    members = member_names(pools[name])
    for other, its in pools.items():
        if other == name:
            return None
        if member_names(its) == members:
            return other
    return None


def interleaved(lists: list[list]) -> list:
    """Items taken in turn from each list, as many as the shortest list holds: one trial's
    worth, so a blend is as big as a pick."""
    n = min(len(items) for items in lists)
    return [lists[i % len(lists)][i // len(lists)] for i in range(n)]


def write_pool(folder: Path, pool: str, dataset: str, members: dict[str, list[dict]]) -> dict:
    """Copy each class's member trials' images of it into one ImageFolder with a manifest."""
    files = []
    with replacing_folder(folder) as staging:
        for name, trials in members.items():
            per_trial = []
            for trial in trials:
                source = Path(trial["synthetic_dir"])
                per_trial.append([(trial, source, r) for r in read_manifest(source)["files"]
                                  if r["class"] == name])
            (staging / name).mkdir()
            for i, (trial, source, record) in enumerate(interleaved(per_trial)):
                target = f"{name}/{i:04d}.png"
                shutil.copyfile(source / record["file"], staging / target)
                files.append({**record, "file": target, "source": str(source / record["file"]),
                              "kid": class_kid(trial, name),
                              "useful": class_usefulness(trial, name)})
        blend = any(len(ts) > 1 for ts in members.values())
        by_use = all(class_usefulness(t, c) is not None for c, ts in members.items() for t in ts)
        manifest = {"pool": pool, "dataset": dataset,
                    "rule": (ALL_BLEND_RULE if pool == ALL_BLEND else BLEND_RULE if blend
                             else RULE if by_use else KID_RULE),
                    "members": member_names(members), "files": files}
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
