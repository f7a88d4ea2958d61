"""Which planned trials grow together (farm.tune.gang.gang_up) and how the driver names them."""

from __future__ import annotations

from farm.tune.gang import gang_up, is_gang, member_name


def spec(index: int, *, variant="stable", lr_g=1e-4, gang=4, seed=None, scheduler=None,
         dataset="diabetes") -> dict:
    return {"family": "tabular-a", "kind": "tabular-a", "dataset": dataset, "class": None,
            "variant": variant, "tag": f"t{index}", "params": {"variant": variant, "lr_g": lr_g,
                                                               "batch_size": 64},
            "epochs": 10, "eval_every": 2, "seed": seed if seed is not None else index,
            "resources": {"cpu": 1}, "select": {"metric": "select/score", "mode": "max"},
            "keep_checkpoints": 2, "scheduler": scheduler or {}, "gang": gang, "index": index}


def test_trials_of_one_shape_share_a_gang_whatever_their_seeds_and_rates():
    units = gang_up([spec(0), spec(1, lr_g=2e-4), spec(2, seed=7)])
    assert len(units) == 1 and is_gang(units[0])
    assert [m["index"] for m in units[0]["gang"]] == [0, 1, 2]
    assert units[0]["tag"] == "gang of 3" and units[0]["index"] == 0


def test_other_shapes_datasets_and_widths_split_gangs():
    trials = [spec(0), spec(1, variant="report"), spec(2), spec(3, dataset="german_credit"),
              spec(4), spec(5)]
    units = gang_up(trials)
    members = [[m["index"] for m in u["gang"]] if is_gang(u) else u["index"] for u in units]
    assert members == [[0, 2, 4, 5], 1, 3]  # 1 and 3 alone: plain trials, not gangs of one
    capped = gang_up([spec(i, gang=2) for i in range(5)])
    assert [len(u["gang"]) if is_gang(u) else 1 for u in capped] == [2, 2, 1]


def test_gang_1_and_scheduled_trials_grow_alone():
    assert gang_up([spec(0, gang=1), spec(1, gang=1)]) == [spec(0, gang=1), spec(1, gang=1)]
    asha = {"kind": "asha", "grace_period": 2}
    assert not any(is_gang(u) for u in gang_up([spec(0, scheduler=asha),
                                                spec(1, scheduler=asha)]))


def test_members_keep_the_trial_names_they_would_have_alone():
    assert member_name(spec(7)) == "tabular-a_diabetes_007"
    assert member_name({**spec(3), "class": "apples"}) == "tabular-a_diabetes_apples_003"
    assert member_name(gang_up([spec(2), spec(5)])[0]) == "tabular-a_diabetes_gang002"
