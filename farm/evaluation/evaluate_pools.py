"""From an image dataset's finished trials to the evaluator's answer: pools, the Ray Train job,
and the pictures (confusion matrices, real-beside-synthetic grid, t-SNE) for TensorBoard and
the report. Returns the dataset's section of `summary["evaluator"]["datasets"]`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from torch.utils.tensorboard import SummaryWriter

from farm.config.classifiers import EvaluatorConfig
from farm.data.images import to_unit_range
from farm.evaluation.evaluator import REAL, Task, evaluate
from farm.evaluation.pools import (USEFUL, best_of, candidates, class_kid, class_metric,
                                   grown_from, member_names, read_pool, same_as, write_pool)
from farm.families.image_common import judge_for, useful_scores
from farm.metrics.paired import paired_gain
from farm.reporting import figures

GRID_IMAGES = 6
CONTROL = "real+noise"  # the control for real + synthetic: the same count of noise images


def real_plus(name: str, real: Task, images: np.ndarray, labels: np.ndarray) -> Task:
    """The real train split plus extra images, which join the real ones as the evaluator's
    `mix` says."""
    return Task(name, np.concatenate([real.images, images]), np.concatenate([real.labels, labels]),
                real_count=len(real.labels))


def noise_control(real: Task, n: int, classes: int, seed: int) -> Task:
    """Real + `n` images of pure noise, labelled round the classes: what any extra images do."""
    noise = np.random.default_rng(seed).integers(0, 256, (n, *real.images.shape[1:]),
                                                 dtype=np.uint8)
    return real_plus(CONTROL, real, noise, np.arange(n) % classes)


BEST_POOL_RULE = ("the highest usefulness of its own images (a linear probe in the judge's "
                  "space, trained on the pool, tested on the val slice; pools within 0.01 of it "
                  "tie, and the lowest mean KID of their members breaks the tie), not test "
                  "accuracy")
CLASSIFIER_POOL_RULE = ("the highest val-slice accuracy of a classifier trained on its images "
                        "alone (the CAS protocol, one classifier seed; the val slice is real train "
                        "images no GAN or judge trained on; pools within 0.01 of it tie, and the "
                        "lowest mean KID of their members breaks the tie), not test accuracy")
# The probe in the judge's features ranked the laptop pools unlike a classifier on their pixels:
# the 500-epoch pairs 0.376 against the conditional blend's 0.290, where their CAS was 0.275
# against 0.295; a classifier on each pool's pixels tested on val put the blend first (0.305
# against 0.221), as CAS does (bench/pool_choice.py --also-val; bench/RESULTS.md)
CHOICE = "choice_accuracy"  # a pool's summary key: its choice classifier's val accuracy
# Usefulness this close to the best pool's is a tie, as between a pair's epochs (trials/
# images.yaml `tolerance`): with about 5 val images a class, a difference of 0.003 between two
# pools says nothing about which teaches a classifier (laptop-8's three-seed blend 0.290, the
# shared-start pairs 0.293: CAS 0.301 against 0.166; bench/RESULTS.md, "Pairs from a shared
# start")
POOL_TIE = 0.01
KID_POOL_RULE = "the lowest mean KID of its members (train split), not test accuracy"


def gain_over(treated: dict, base: dict) -> dict:
    """`treated` minus `base`, paired by classifier seed, with its 95% interval."""
    return paired_gain(treated["accuracies"], base["accuracies"])


def verdict(gain: dict, over_control: dict | None, control_gain: dict | None) -> str:
    """One line: does the pool help as augmentation? Only when the 95% interval of its gain
    over real alone is above 0 and the interval of its gain over the noise control (both
    paired by classifier seed) is above 0 too."""
    ci = gain.get("ci")
    span = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else " (one seed: no interval)"
    text = f"{gain['mean']:+.3f}{span} over real alone"
    if control_gain is not None:
        text += f", noise control {control_gain['mean']:+.3f}"
    above = over_control.get("ci") if over_control else None
    helps = (ci is not None and ci[0] > 0
             and (over_control is None or (above is not None and above[0] > 0)))
    return f"helps: {text}" if helps else f"does not help: {text}"


def pool_usefulness(data, x: np.ndarray, y: np.ndarray) -> float | None:
    """The pool's own images scored as a trial's are (farm.metrics.usefulness): a probe
    trained on all of them, its mean probability of the right class on the val slice. One
    measure for every pool, whatever families its members come from (members' own scores are
    not comparable across kinds: a pair is scored beside real images of the other classes)."""
    if data.val_features is None or not len(x):
        return None
    features = judge_for(data, "cpu").features(to_unit_range(x)).cpu()
    generated = {int(label): features[y == label] for label in np.unique(y)}
    return useful_scores(data, generated).get(USEFUL)


def classifier_choice(dataset: str, prepared, trained: dict, config: EvaluatorConfig,
                      runs: str, use_gpu: bool, verbose: bool = False) -> dict[str, float]:
    """{pool: val accuracy}: one classifier per pool, trained on the pool's images alone with
    the CAS protocol and the first classifier seed, tested on the val slice (one Ray Train job).
    `choice_epochs` passes where set: a ranking needs CAS's classifier converged, not the
    ceiling's schedule. Empty when there is nothing to choose between or no val slice."""
    val = np.asarray(prepared.split.val, dtype=np.int64)
    if len(trained) < 2 or not len(val):
        return {}
    images = prepared.images
    print(f"Evaluator for {dataset}: choosing among {len(trained)} pools by a classifier on each "
          f"pool's images, tested on the {len(val)} val-slice images", flush=True)
    job = evaluate(f"{dataset}-choice", [Task(f"synthetic/{n}", x, y) for n, (x, y) in
                                         trained.items()],
                   Task("val", images.images[val], images.labels[val]), list(images.classes),
                   replace(config, seeds=1, epochs=config.choice_passes), runs, use_gpu,
                   reference_images=len(prepared.split.train), verbose=verbose,
                   tested_on="val-slice images (to choose the pool)")
    return {n: job["results"][f"synthetic/{n}"]["accuracy"] for n in trained}


def best_pool(section_pools: dict, trained) -> tuple[str, str]:
    """(pool, rule): the pool with the best val-slice score (its choice classifier's accuracy
    where it has one, else the probe's usefulness), of those within `POOL_TIE` of the best the
    one whose members have the lowest KID (the lowest KID alone for runs without a val slice);
    never the test split."""
    for key, rule in ((CHOICE, CLASSIFIER_POOL_RULE), ("usefulness", BEST_POOL_RULE)):
        score = {n: section_pools[n].get(key) for n in trained}
        if all(v is not None for v in score.values()):
            top = max(score.values())
            tied = [n for n in trained if score[n] >= top - POOL_TIE]
            return min(tied, key=lambda n: section_pools[n]["mean_kid"]), rule
    return min(trained, key=lambda n: section_pools[n]["mean_kid"]), KID_POOL_RULE


def pools_to_train(section_pools: dict, trained: dict, which: str) -> tuple[str, str, dict]:
    """(best pool, its rule, the pools the classifiers train on): every pool, or with `which`
    "chosen" the best alone; the others keep their usefulness, KID and members in the summary
    and are marked `not_trained`."""
    best, rule = best_pool(section_pools, trained)
    if which != "chosen":
        return best, rule, trained
    for name in trained:
        if name != best:
            section_pools[name]["not_trained"] = "evaluator.pools is chosen"
    return best, rule, {best: trained[best]}


def _pairs(members: dict[str, list[dict]]) -> list[tuple[str, dict]]:
    """(class, trial) for every member of every class."""
    return [(c, t) for c, ts in members.items() for t in ts]


def _at_chosen_epochs(members: dict[str, list[dict]], grown_by: list[dict]) -> dict:
    """What the pool's members scored when they were chosen (train split only), and what the
    trials it chose from cost to grow."""
    pairs = _pairs(members)
    accuracy = [class_metric(t, c, "judge_accuracy") for c, t in pairs]
    accuracy = [a for a in accuracy if a is not None]
    useful = [class_metric(t, c, USEFUL) for c, t in pairs]
    return {"mean_kid": float(np.mean([class_kid(t, c) for c, t in pairs])),
            "mean_usefulness": (float(np.mean(useful))
                                if useful and all(u is not None for u in useful) else None),
            "mean_judge_accuracy": float(np.mean(accuracy)) if accuracy else None,
            "trials": len(grown_by),
            "train_seconds": round(sum(t.get("train_seconds") or 0.0 for t in grown_by), 1)}


def evaluate_image_dataset(dataset: str, prepared, trials: list[dict], config: EvaluatorConfig,
                           experiment_dir: Path, use_gpu: bool, runs: str | None = None,
                           verbose: bool = False) -> dict | None:
    """Pools of `trials` (summary entries of this dataset, updated with their `pools`), then CAS,
    the real-data ceiling and real + synthetic for each pool, on the held-out test split.
    `runs` is where Ray Train stores its runs (default `<experiment_dir>/evaluator`; a URI for
    a remote experiment). `verbose`: every classifier's step lines and Ray Train's own."""
    images, split = prepared.images, prepared.split
    classes = list(images.classes)
    mine = [t for t in trials if t["dataset"] == dataset]
    grown_by = candidates(mine)  # per pool, the trials it chooses from
    pools = best_of(grown_by, classes)
    if not pools:
        print(f"Evaluator for {dataset}: no trial produced images; nothing to evaluate")
        return None
    section_pools, trained = {}, {}
    for name, members in pools.items():
        for _, trial in _pairs(members):
            trial.setdefault("pools", [])
            if name not in trial["pools"]:
                trial["pools"].append(name)
        other = same_as(pools, name)
        if other:
            section_pools[name] = {"same_as": other, "members": member_names(members)}
            continue
        folder = experiment_dir / "synthetic" / dataset / "pools" / name
        section_pools[name] = write_pool(folder, name, dataset, members)
        section_pools[name].update(_at_chosen_epochs(members, grown_from(name, grown_by)))
        trained[name] = read_pool(folder, classes)
        section_pools[name]["usefulness"] = pool_usefulness(prepared.trial_data, *trained[name])

    # Chosen before looking at the test split: the pool whose own images teach a classifier
    # (or, with choose_by probe, a probe in the judge's features) the val slice best; KID where
    # a run has no val slice.
    runs = runs or str(experiment_dir / "evaluator")
    if config.choose_by == "classifier":
        for name, accuracy in classifier_choice(dataset, prepared, trained, config, runs,
                                                use_gpu, verbose).items():
            section_pools[name][CHOICE] = accuracy
    best, rule, trained = pools_to_train(section_pools, trained, config.pools)

    # After selection the val slice rejoins the train split: the ceiling and real + synthetic
    # learn from every real train image; the test split is still unseen.
    train, test = split.train, np.asarray(split.test)
    real = Task(REAL, images.images[train], images.labels[train])
    tasks = [real]
    for name, (x, y) in trained.items():
        tasks += [Task(f"synthetic/{name}", x, y, passes=config.cas_passes),
                  real_plus(f"real+synthetic/{name}", real, x, y)]
    if trained:  # what any extra images do: as many of pure noise as the biggest pool
        tasks.append(noise_control(real, max(len(y) for _, y in trained.values()), len(classes),
                                   config.seed))
    test_task = Task("test", images.images[test], images.labels[test])
    job = evaluate(dataset, tasks, test_task, classes, config, runs, use_gpu,
                   reference_images=len(train), verbose=verbose)
    results = job["results"]

    folder = experiment_dir / "figures" / dataset / "evaluator"
    writer = SummaryWriter(str(experiment_dir / "evaluator" / f"tensorboard-{dataset}"))
    for task, result in results.items():
        fig = figures.confusion_figure(result["confusion"], classes,
                                       title=f"{task}: accuracy {result['accuracy']:.3f}")
        writer.add_figure(f"evaluator/confusion/{task}", fig, close=False)
        name = f"confusion-{task.replace('/', '-')}.png"
        result["figure"] = str(figures.save(fig, folder / name))
        writer.add_scalar(f"evaluator/accuracy/{task}", result["accuracy"])
    ceiling = results[REAL]
    control = results.get(CONTROL)
    control_gain = gain_over(control, ceiling) if control else None
    for name in trained:
        cas, both = results[f"synthetic/{name}"], results[f"real+synthetic/{name}"]
        gain = gain_over(both, ceiling)
        section_pools[name].update(
            cas=cas, real_plus_synthetic=both,
            cas_ratio=cas["accuracy"] / ceiling["accuracy"] if ceiling["accuracy"] else None,
            augmentation_gain=gain["mean"], gain=gain,
            over_control=gain_over(both, control) if control else None)
        section_pools[name]["verdict"] = verdict(gain, section_pools[name]["over_control"],
                                                 control_gain)
    pictures = _pictures(prepared, trained, classes, dataset, best)
    paths = {}
    for key, fig in pictures.items():
        writer.add_figure(f"evaluator/{key}", fig, close=False)
        paths[key] = str(figures.save(fig, folder / f"{key.replace('/', '-')}.png"))
    writer.close()
    return {"classes": classes, "chance": 1 / len(classes), "test_images": int(len(test)),
            "ceiling": ceiling, "control": control, "control_gain": control_gain,
            "pools": section_pools, "protocol": config.describe(),
            "best_pool": best, "best_pool_rule": rule,
            "workers": job["workers"], "device": job["device"], "figures": paths,
            # the classifiers' own clocks: the rest of the job is start-up and hand-over
            "classifier_seconds": round(sum(r["seconds"] for r in results.values()), 1)}


def _pictures(prepared, trained, classes, dataset, best) -> dict:
    """The real train images beside the best pool's, per class; t-SNE of each pool vs real."""
    data = prepared.trial_data
    x_best, y_best = trained[best]
    rows = [(name, data.images[data.labels == label][:GRID_IMAGES],
             x_best[y_best == label][:GRID_IMAGES]) for label, name in enumerate(classes)]
    out = {"classes": figures.class_grid_figure(
        rows, title=f"{dataset}: real (train split) | synthetic ({best})")}
    judge = judge_for(data, "cpu")
    real_features = np.concatenate([data.real_features[label] for label in range(len(classes))])
    for name, (x, _) in trained.items():
        fake = to_unit_range(x)
        out[f"tsne/{name}"] = figures.tsne_figure(
            real_features, judge.features(fake).cpu().numpy(),
            title=f"t-SNE in the judge's features: real train vs {name}")
    return out

