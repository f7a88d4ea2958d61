"""Pools: which trial's images stand for each class, and the pool folder with its manifest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from farm.data.images import write_image_folder
from farm.evaluation.pools import (ALL_BLEND, ALL_BLEND_RULE, BEST_PER_CLASS, BLEND_RULE,
                                   choose_pools, class_kid, grown_from, member_names, read_pool,
                                   same_as, write_pool)


def _trial(name, family, cls, metrics, folder=None):
    return {"trial": name, "family": family, "class": cls, "metrics": metrics, "status": "ok",
            "synthetic_dir": str(folder) if folder else f"/nowhere/{name}"}


def test_class_kid_reads_per_class_and_conditional_trials():
    pair = _trial("p", "fruit-pairs", "apples", {"kid": 0.2})
    spiked = _trial("s", "spiked", None, {"kid/apples": 0.1, "kid/mean": 0.3})
    assert class_kid(pair, "apples") == 0.2 and class_kid(pair, "kiwi") == math.inf
    assert class_kid(spiked, "apples") == 0.1 and class_kid(spiked, "kiwi") == math.inf
    assert class_kid(_trial("n", "fruit-pairs", "apples", {"kid": float("nan")}), "apples") \
        == math.inf


def test_pools_per_family_and_best_per_class():
    trials = [_trial("a1", "fruit-pairs", "apples", {"kid": 0.5}),
              _trial("a2", "fruit-pairs", "apples", {"kid": 0.2}),
              _trial("b1", "fruit-pairs", "bananas", {"kid": 0.4}),
              _trial("s1", "spiked", None, {"kid/apples": 0.3, "kid/bananas": 0.1}),
              {**_trial("x", "spiked", None, {"kid/apples": 0.0}), "status": "error"}]
    pools = choose_pools(trials, ["apples", "bananas"])
    names = {p: member_names(m) for p, m in pools.items()}
    assert names == {"fruit-pairs": {"apples": ["a2"], "bananas": ["b1"]},
                     "fruit-pairs-blend": {"apples": ["a1", "a2"], "bananas": ["b1"]},
                     "spiked": {"apples": ["s1"], "bananas": ["s1"]},
                     BEST_PER_CLASS: {"apples": ["a2"], "bananas": ["s1"]},
                     # every trial of every family that grew the class, in trial order
                     ALL_BLEND: {"apples": ["a1", "a2", "s1"], "bananas": ["b1", "s1"]}}
    assert same_as(pools, BEST_PER_CLASS) is None


def test_a_single_family_gets_no_duplicate_pool_and_same_as_finds_twins():
    trials = [_trial("a", "fruit-pairs", "apples", {"kid": 0.5})]
    assert list(choose_pools(trials, ["apples"])) == ["fruit-pairs"]
    twins = {"f": {"apples": [trials[0]]}, "g": {"apples": [trials[0]]}}
    assert same_as(twins, "g") == "f" and same_as(twins, "f") is None


def test_write_pool_copies_member_images_with_provenance(tmp_path):
    rng = np.random.default_rng(0)
    sources = {}
    for name, classes in (("t-apples", ["apples"]), ("t-all", ["apples", "bananas"])):
        by_class = {c: rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8) for c in classes}
        write_image_folder(by_class, tmp_path / name, {"trial": name, "checkpoint": f"/ck/{name}",
                                                       "epoch": 7, "seed": 1, "sample_seed": 8})
        sources[name] = by_class
    members = {"apples": [_trial("t-apples", "fruit-pairs", "apples", {"kid": 0.1},
                                 tmp_path / "t-apples")],
               "bananas": [_trial("t-all", "spiked", None, {"kid/bananas": 0.2},
                                  tmp_path / "t-all")]}
    info = write_pool(tmp_path / "pools" / "best", "best", "fruit", members)
    assert info["images"] == 6 and info["members"] == {"apples": ["t-apples"],
                                                       "bananas": ["t-all"]}
    manifest = json.loads((tmp_path / "pools" / "best" / "manifest.json").read_text())
    for record in manifest["files"]:
        assert (tmp_path / "pools" / "best" / record["file"]).is_file()
        assert {"trial", "checkpoint", "epoch", "seed", "sample_seed", "index"} <= set(record)
    assert [r["trial"] for r in manifest["files"]] == ["t-apples"] * 3 + ["t-all"] * 3
    images, labels = read_pool(tmp_path / "pools" / "best", ["apples", "bananas"])
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_array_equal(images[:3], sources["t-apples"]["apples"])  # PNG is lossless
    np.testing.assert_array_equal(images[3:], sources["t-all"]["bananas"])
    assert [p.name for p in (tmp_path / "pools").iterdir()] == ["best"]  # no staging left


def test_a_blend_takes_each_class_in_turn_from_every_seed_as_many_as_one_exports(tmp_path):
    """Three seeds of an all-class family export 4 images a class each; the blend holds 4 a
    class, taken s0, s1, s2, s0, and its manifest names the trial behind every file."""
    rng = np.random.default_rng(1)
    trials, sources = [], {}
    for seed in range(3):
        name = f"cond-{seed}"
        by_class = {c: rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
                    for c in ("apples", "kiwi")}
        write_image_folder(by_class, tmp_path / name, {"trial": name, "seed": seed})
        sources[name] = by_class
        trials.append(_trial(name, "conditional", None,
                             {"useful/apples": 0.1 * seed, "useful/kiwi": 0.3 - 0.1 * seed,
                              "kid/apples": 1.0, "kid/kiwi": 1.0}, tmp_path / name))
    pools = choose_pools(trials, ["apples", "kiwi"])
    assert set(pools) == {"conditional", "conditional-blend"}
    assert member_names(pools["conditional"]) == {"apples": ["cond-2"], "kiwi": ["cond-0"]}
    info = write_pool(tmp_path / "pools" / "b", "conditional-blend", "fruit",
                      pools["conditional-blend"])
    assert info["images"] == 8
    manifest = json.loads((tmp_path / "pools" / "b" / "manifest.json").read_text())
    assert manifest["rule"] == BLEND_RULE
    assert [r["trial"] for r in manifest["files"]] == ["cond-0", "cond-1", "cond-2", "cond-0"] * 2
    images, labels = read_pool(tmp_path / "pools" / "b", ["apples", "kiwi"])
    assert labels.tolist() == [0] * 4 + [1] * 4
    np.testing.assert_array_equal(images[3], sources["cond-0"]["apples"][1])
    np.testing.assert_array_equal(images[5], sources["cond-1"]["kiwi"][0])


def test_all_blend_takes_each_class_in_turn_from_every_family(tmp_path):
    """A pair grew apples, two conditional seeds grew both classes: all-blend's apples come
    from the pair and both seeds in turn, its kiwis from the two seeds; its candidates are
    every family's trials, and its manifest says so."""
    rng = np.random.default_rng(2)
    trials = []
    for name, family, cls, classes in (("pair", "fruit-pairs", "apples", ["apples"]),
                                       ("c0", "conditional", None, ["apples", "kiwi"]),
                                       ("c1", "conditional", None, ["apples", "kiwi"])):
        write_image_folder({c: rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
                            for c in classes}, tmp_path / name, {"trial": name})
        metrics = {"useful": 0.5} if cls else {"useful/apples": 0.1, "useful/kiwi": 0.2}
        trials.append(_trial(name, family, cls, metrics, tmp_path / name))
    pools = choose_pools(trials, ["apples", "kiwi"])
    assert member_names(pools[ALL_BLEND]) == {"apples": ["pair", "c0", "c1"], "kiwi": ["c0", "c1"]}
    groups = {"fruit-pairs": trials[:1], "conditional": trials[1:], BEST_PER_CLASS: trials}
    assert grown_from(ALL_BLEND, groups) == trials
    assert grown_from("conditional-blend", groups) == trials[1:]
    info = write_pool(tmp_path / "pools" / ALL_BLEND, ALL_BLEND, "fruit", pools[ALL_BLEND])
    manifest = json.loads(Path(info["manifest"]).read_text())
    assert manifest["rule"] == ALL_BLEND_RULE and info["images"] == 6
    assert [r["trial"] for r in manifest["files"]] == ["pair", "c0", "c1", "c0", "c1", "c0"]


def test_a_failed_pool_write_leaves_the_old_pool_and_no_staging(tmp_path):
    write_image_folder({"apples": np.zeros((2, 8, 8, 3), np.uint8)}, tmp_path / "t", {"trial": "t"})
    member = _trial("t", "fruit-pairs", "apples", {"kid": 0.1}, tmp_path / "t")
    write_pool(tmp_path / "pools" / "p", "p", "fruit", {"apples": [member]})
    (tmp_path / "t" / "apples" / "0001.png").unlink()  # a member's file vanished
    with pytest.raises(FileNotFoundError):
        write_pool(tmp_path / "pools" / "p", "p", "fruit", {"apples": [member]})
    assert [p.name for p in (tmp_path / "pools").iterdir()] == ["p"]
    assert len(json.loads((tmp_path / "pools" / "p" / "manifest.json").read_text())["files"]) == 2


def test_a_family_with_several_variants_gets_a_pool_per_variant():
    trials = [{**_trial("p1", "fruit-pairs", "apples", {"kid": 0.5}), "variant": "report"},
              {**_trial("p2", "fruit-pairs", "apples", {"kid": 0.2}), "variant": "diffaug"},
              {**_trial("s1", "spiked", None, {"kid/apples": 0.3}), "variant": "g1"}]
    pools = choose_pools(trials, ["apples"])
    assert {p: member_names(m)["apples"] for p, m in pools.items()} == {
        "fruit-pairs.report": ["p1"], "fruit-pairs.diffaug": ["p2"], "spiked": ["s1"],
        BEST_PER_CLASS: ["p2"], ALL_BLEND: ["p1", "p2", "s1"]}


def test_members_are_chosen_by_usefulness_where_every_candidate_has_it():
    """KID would pick a1 for apples and s1 for bananas; usefulness on the val slice picks the
    others, and it wins whenever every candidate for the class was scored."""
    trials = [_trial("a1", "fruit-pairs", "apples", {"kid": 0.1, "useful": 0.2}),
              _trial("a2", "fruit-pairs", "apples", {"kid": 0.5, "useful": 0.6}),
              _trial("s1", "spiked", None, {"kid/apples": 0.3, "kid/bananas": 0.1,
                                            "useful/apples": 0.4, "useful/bananas": 0.1}),
              _trial("s2", "spiked", None, {"kid/apples": 0.4, "kid/bananas": 0.2,
                                            "useful/apples": 0.3, "useful/bananas": 0.7})]
    pools = choose_pools(trials, ["apples", "bananas"])
    names = {p: member_names(m) for p, m in pools.items()}
    assert names[BEST_PER_CLASS] == {"apples": ["a2"], "bananas": ["s2"]}
    assert names["spiked"] == {"apples": ["s1"], "bananas": ["s2"]}
    assert names["spiked-blend"] == {"apples": ["s1", "s2"], "bananas": ["s1", "s2"]}


def test_an_older_run_without_usefulness_falls_back_to_kid():
    trials = [_trial("a1", "fruit-pairs", "apples", {"kid": 0.1}),
              _trial("a2", "fruit-pairs", "apples", {"kid": 0.5, "useful": 0.9})]
    pools = choose_pools(trials, ["apples"])
    assert pools["fruit-pairs"]["apples"][0]["trial"] == "a1"


def test_a_pool_helps_only_when_its_whole_interval_is_above_zero_and_the_noise_control():
    from farm.evaluation.evaluate_pools import verdict

    control = {"mean": 0.01, "ci": [-0.01, 0.03]}
    above, not_above = {"mean": 0.02, "ci": [0.005, 0.035]}, {"mean": 0.01, "ci": [-0.01, 0.03]}
    assert verdict({"mean": 0.03, "ci": [0.02, 0.04]}, above, control).startswith(
        "helps: +0.030 [+0.020, +0.040] over real alone, noise control +0.010")
    assert verdict({"mean": 0.03, "ci": [-0.01, 0.07]}, above, control).startswith("does not")
    assert verdict({"mean": 0.03, "ci": [0.02, 0.04]}, not_above, control).startswith("does not")
    assert "no interval" in verdict({"mean": 0.05, "ci": None}, None, None)


def test_evaluator_pools_chosen_trains_the_farms_pick_alone_and_keeps_the_others_scores():
    from farm.config.classifiers import evaluator_config
    from farm.evaluation.evaluate_pools import pools_to_train
    from farm.infra.errors import ConfigError

    def section():
        return {"fruit-pairs": {"usefulness": 0.2, "mean_kid": 1.0},
                "conditional": {"usefulness": 0.4, "mean_kid": 3.0}}

    trained = {"fruit-pairs": "pair images", "conditional": "conditional images"}
    pools = section()
    best, _, kept = pools_to_train(pools, dict(trained), "all")
    assert best == "conditional" and kept == trained and not any(
        "not_trained" in p for p in pools.values())
    best, _, kept = pools_to_train(pools, dict(trained), "chosen")
    assert best == "conditional" and kept == {"conditional": "conditional images"}
    assert pools["fruit-pairs"] == {"usefulness": 0.2, "mean_kid": 1.0,
                                    "not_trained": "evaluator.pools is chosen"}
    assert "not_trained" not in pools["conditional"]
    with pytest.raises(ConfigError, match="evaluator.pools must be one of all, chosen"):
        evaluator_config({"pools": "best"})


def test_pools_whose_usefulness_ties_are_told_apart_by_their_members_kid():
    from farm.evaluation.evaluate_pools import POOL_TIE, best_pool

    pools = {"fruit-pairs": {"usefulness": 0.293, "mean_kid": 26.4},
             "conditional-blend": {"usefulness": 0.290, "mean_kid": 13.0},
             "conditional": {"usefulness": 0.260, "mean_kid": 11.9}}
    assert best_pool(pools, pools)[0] == "conditional-blend"  # within 0.01: the lower KID
    pools["fruit-pairs"]["usefulness"] = 0.290 + POOL_TIE + 0.001
    assert best_pool(pools, pools)[0] == "fruit-pairs"  # clearly more useful: KID aside
    no_val = {n: {"usefulness": None, "mean_kid": p["mean_kid"]} for n, p in pools.items()}
    assert best_pool(no_val, no_val)[0] == "conditional"


def test_the_choice_classifiers_val_accuracy_outranks_the_probe_where_every_pool_has_one():
    from farm.config.classifiers import evaluator_config
    from farm.evaluation.evaluate_pools import CLASSIFIER_POOL_RULE, best_pool
    from farm.infra.errors import ConfigError

    # laptop: the probe put the 500-epoch pairs first, a classifier on the pixels the blend
    pools = {"fruit-pairs": {"usefulness": 0.376, "choice_accuracy": 0.221, "mean_kid": 26.4},
             "conditional-blend": {"usefulness": 0.290, "choice_accuracy": 0.305,
                                   "mean_kid": 13.0},
             "conditional": {"usefulness": 0.260, "choice_accuracy": 0.300, "mean_kid": 11.9}}
    assert best_pool(pools, pools) == ("conditional", CLASSIFIER_POOL_RULE)  # tie: lower KID
    pools["conditional"]["choice_accuracy"] = 0.290
    assert best_pool(pools, pools)[0] == "conditional-blend"
    del pools["conditional"]["choice_accuracy"]  # not every pool measured: the probe decides
    assert best_pool(pools, pools)[0] == "fruit-pairs"
    assert evaluator_config(None).choose_by == "classifier"
    with pytest.raises(ConfigError, match="evaluator.choose_by must be one of classifier, probe"):
        evaluator_config({"choose_by": "kid"})


def test_a_pool_reads_its_own_group_and_a_blend_its_familys():
    from farm.evaluation.pools import grown_from

    groups = {"conditional": ["c1", "c2"], "odd-blend": ["o1"]}  # a family named like a blend
    assert grown_from("conditional", groups) == ["c1", "c2"]
    assert grown_from("conditional-blend", groups) == ["c1", "c2"]
    assert grown_from("odd-blend", groups) == ["o1"]


def test_the_choice_classifier_trains_nothing_with_one_pool_or_no_val_slice(monkeypatch):
    from types import SimpleNamespace

    from farm.config.classifiers import evaluator_config
    from farm.evaluation import evaluate_pools

    def no_job(*args, **kwargs):
        raise AssertionError("no Ray Train job is needed")

    monkeypatch.setattr(evaluate_pools, "evaluate", no_job)
    images = SimpleNamespace(images=np.zeros((4, 8, 8, 3), np.uint8), labels=np.arange(4) % 2,
                             classes=["a", "b"])
    pool = (images.images[:2], images.labels[:2])
    one_pool = SimpleNamespace(images=images, split=SimpleNamespace(val=(1, 3), train=(0, 1, 3)))
    no_val = SimpleNamespace(images=images, split=SimpleNamespace(val=(), train=(0, 1, 3)))
    config = evaluator_config(None)
    assert evaluate_pools.classifier_choice("d", one_pool, {"p": pool}, config, "runs",
                                            False) == {}
    assert evaluate_pools.classifier_choice("d", no_val, {"p": pool, "q": pool}, config, "runs",
                                            False) == {}


def test_the_choice_classifiers_train_on_each_pool_alone_and_test_on_the_val_slice(monkeypatch):
    from types import SimpleNamespace

    from farm.config.classifiers import evaluator_config
    from farm.evaluation import evaluate_pools

    seen = {}

    def job(name, tasks, test, classes, config, storage, use_gpu, reference_images, **kwargs):
        seen.update(name=name, tasks=tasks, test=test, config=config, reference=reference_images)
        return {"results": {t.name: {"accuracy": 0.1 * i} for i, t in enumerate(tasks)}}

    monkeypatch.setattr(evaluate_pools, "evaluate", job)
    labels = np.arange(6) % 2
    images = SimpleNamespace(images=np.arange(6)[:, None, None, None] * np.ones(
        (6, 4, 4, 3), np.uint8), labels=labels, classes=["a", "b"])
    prepared = SimpleNamespace(images=images,
                               split=SimpleNamespace(val=(2, 5), train=(0, 1, 2, 3, 5)))
    pools = {"p": (images.images[:1], labels[:1]), "q": (images.images[1:3], labels[1:3])}
    got = evaluate_pools.classifier_choice("d", prepared, pools, evaluator_config({"seeds": 8}),
                                           "runs", False)
    assert got == {"p": 0.0, "q": 0.1}
    assert seen["name"] == "d-choice" and seen["config"].seeds == 1 and seen["reference"] == 5
    assert seen["config"].epochs == 30  # the evaluator's passes, unless choice_epochs says
    assert [(t.name, t.real_count) for t in seen["tasks"]] == [("synthetic/p", None),
                                                               ("synthetic/q", None)]
    assert seen["test"].images[:, 0, 0, 0].tolist() == [2, 5]  # the val slice, not the test split
    evaluate_pools.classifier_choice("d", prepared, pools,
                                     evaluator_config({"epochs": 80, "choice_epochs": 40}),
                                     "runs", False)
    assert seen["config"].epochs == 40
    assert "80 passes over the real train split (the pool choice's classifiers 40)" in \
        evaluator_config({"epochs": 80, "choice_epochs": 40}).describe()
    assert "(the pool choice" not in evaluator_config({"choice_epochs": 30}).describe()
    assert "80 passes over the real train split (CAS 40, the pool choice's classifiers 40)" in \
        evaluator_config({"epochs": 80, "choice_epochs": 40, "cas_epochs": 40}).describe()
