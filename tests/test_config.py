"""trials/*.yaml + presets: loading, every checked mistake, preset merging, and the trial plan."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from farm.config import VARIANT_AXIS, load_config
from farm.errors import ConfigError
from farm.families import KINDS
from farm.plan import format_plan, plan_trials, select_families

REPO = Path(__file__).resolve().parents[1]
TRIALS = REPO / "trials"
FAMILY = "tabular-a"


def family_file() -> dict:
    """tabular-a exactly as trials/tabular.yaml writes it (no preset applied)."""
    return yaml.safe_load((TRIALS / "tabular.yaml").read_text())["families"][FAMILY]


@pytest.fixture
def trials(tmp_path) -> Path:
    """A private copy of the repo's trials/ that a test may break."""
    return Path(shutil.copytree(TRIALS, tmp_path / "trials"))


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not found exactly once in {path.name}"
    path.write_text(text.replace(old, new))
    return path


def set_line(path: Path, start: str, new: str) -> Path:
    """Replace the one line that starts with `start` (value and comment included) by `new`."""
    lines = path.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(hits) == 1, f"{start!r} starts {len(hits)} lines of {path.name}, not one"
    lines[hits[0]] = new
    path.write_text("\n".join(lines) + "\n")
    return path


def line_of(path: Path, start: str) -> int:
    """1-based number of the one line that starts with `start`."""
    hits = [i + 1 for i, line in enumerate(path.read_text().splitlines()) if line.startswith(start)]
    assert len(hits) == 1
    return hits[0]


def config_error(trials_dir: Path, preset: str = "smoke") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(trials_dir, preset)
    assert "\n" not in str(info.value)
    return info.value


# ---------------------------------------------------------------- the repo's own trials/


@pytest.mark.parametrize("preset", ["smoke", "full", "tiny"])
def test_repo_trials_load(preset):
    config = load_config(TRIALS, preset)
    assert config["preset"] == preset
    assert list(config["families"]) == [FAMILY]
    family = config["families"][FAMILY]
    assert family["kind"] == "tabular"
    assert family["datasets"] == ["german_credit", "diabetes"]
    assert family["per_dataset"] == {"diabetes": {"flip_every": 10}}
    # No preset touches the bundles: `report` is the report as it is, `stable` the farm's fixes.
    assert family["variants"] == family_file()["variants"]
    assert family["variants"]["report"] == {}
    assert family["variants"]["stable"]["loss"] == "wasserstein"
    # Every variant a preset searches is one the family defines.
    assert set(family["search"][VARIANT_AXIS]) <= set(family["variants"])
    data = config["data"]
    assert data["split_seed"] == 0
    assert data["tables"] == {"test_fraction": 0.3, "val_fraction": 0.2, "missing": "drop",
                              "synthetic_rows": 0}
    assert data["images"] == {"test_fraction": 0.2, "size": 64}


def test_every_variant_is_a_valid_param_bundle():
    """Each bundle, laid over params, must build the kind's params dataclass."""
    family = load_config(TRIALS, "full")["families"][FAMILY]
    params_type = KINDS[family["kind"]].params
    for name, bundle in family["variants"].items():
        built = params_type(**{**family["params"], **bundle})
        for key, value in bundle.items():
            assert getattr(built, key) == value, (name, key)


def test_full_preset_keeps_family_settings():
    family = load_config(TRIALS, "full")["families"][FAMILY]
    assert family == family_file()  # full.yaml touches no family setting
    smoke = load_config(TRIALS, "smoke")["families"][FAMILY]
    assert family["epochs"] > smoke["epochs"]  # the full run trains longer than the smoke run
    assert family["search"][VARIANT_AXIS] == ["report", "stable"]
    assert sorted(family["search"]) == ["lr_g", VARIANT_AXIS]  # lr_d, flip_fraction not searched
    assert len(family["search"]["lr_g"]) == 2
    assert family["params"]["metric_trees"] == 50
    assert family["params"]["g_hidden"] == [64, 128, 256]


def test_smoke_preset_replaces_search_whole():
    family = load_config(TRIALS, "smoke")["families"][FAMILY]
    assert family["epochs"] == 400 and family["eval_every"] == 20
    assert family["search"] == {VARIANT_AXIS: ["report", "stable"]}  # the lr_g axis is gone
    assert family["params"] == family_file()["params"]
    assert family["params"]["lr_g"] == 1.0e-4 and family["params"]["noise_dim"] == 20


def test_tiny_preset_merges_params_key_by_key():
    family = load_config(TRIALS, "tiny")["families"][FAMILY]
    assert family["epochs"] == 4 and family["eval_every"] == 2
    assert family["search"] == {VARIANT_AXIS: ["stable"]}
    assert family["params"]["metric_trees"] == 10           # from the preset
    assert family["params"]["noise_dim"] == 20               # kept from tabular.yaml
    assert family["params"] == {**family_file()["params"], "metric_trees": 10}
    assert family["variants"] == family_file()["variants"]
    assert family["select"] == {"metric": "select/score", "mode": "max"}
    assert family["resources"] == {"cpu": 1, "gpu": 0.1}


def test_loading_does_not_mutate_between_presets():
    tiny = load_config(TRIALS, "tiny")
    tiny["families"][FAMILY]["variants"]["stable"]["lr_g"] = 9.0
    full = load_config(TRIALS, "full")
    assert full["families"][FAMILY]["params"]["metric_trees"] == 50
    assert full["families"][FAMILY]["variants"]["stable"]["lr_g"] == 2.0e-4
    assert tiny["families"][FAMILY]["params"] is not full["families"][FAMILY]["params"]
    assert tiny["families"][FAMILY]["variants"] is not full["families"][FAMILY]["variants"]


def test_preset_resources_and_select_merge(trials):
    (trials / "presets" / "mine.yaml").write_text(
        "families:\n  tabular-a:\n    resources: {gpu: 0.5}\n    select: {mode: min}\n"
        "    search: {lr_d: [1.0e-3]}\n"
        "data:\n  tables: {missing: impute}\n")
    config = load_config(trials, "mine")
    family = config["families"][FAMILY]
    assert family["resources"] == {"cpu": 1, "gpu": 0.5}
    assert family["select"] == {"metric": "select/score", "mode": "min"}
    assert family["search"] == {"lr_d": [1.0e-3]}
    assert config["data"]["tables"]["missing"] == "impute"
    assert config["data"]["tables"]["test_fraction"] == 0.3


def test_preset_tweaking_one_variant_key_merges(trials):
    edit(trials / "presets" / "tiny.yaml", "    params: {metric_trees: 10}",
         "    params: {metric_trees: 10}\n    variants: {stable: {lr_d: 5.0e-4}}")
    family = load_config(trials, "tiny")["families"][FAMILY]
    original = family_file()["variants"]
    assert family["variants"]["stable"] == {**original["stable"], "lr_d": 5.0e-4}
    assert family["variants"]["stable"]["loss"] == "wasserstein"  # untouched keys kept
    assert family["variants"]["report"] == original["report"]
    planned = plan_trials({FAMILY: family}, base_seed=0)
    assert [t["params"]["lr_d"] for t in planned] == [5.0e-4, 5.0e-4]
    assert all(t["params"]["g_output"] == "blockwise" for t in planned)


def test_preset_can_add_a_variant_and_search_it(trials):
    edit(trials / "presets" / "smoke.yaml", "      variant: [report, stable]",
         "      variant: [report, wild]\n    variants:\n      wild: {lr_g: 3.0e-4}")
    family = load_config(trials, "smoke")["families"][FAMILY]
    assert sorted(family["variants"]) == ["report", "stable", "wild"]
    planned = plan_trials({FAMILY: family}, base_seed=0)
    wild = [t for t in planned if t["tag"] == "variant=wild"]
    assert len(wild) == 2 and all(t["params"]["lr_g"] == 3.0e-4 for t in wild)


# ---------------------------------------------------------------- mistakes, one line each


def test_unknown_family_key(trials):
    path = set_line(trials / "tabular.yaml", "    epochs:", "    epoch: 100")
    error = config_error(trials)
    assert str(path) in str(error)
    assert "'epoch'" in str(error) and "did you mean 'epochs'" in str(error)


def test_unknown_param_key_suggests(trials):
    path = edit(trials / "tabular.yaml", "      lr_g: 1.0e-4", "      lr_gg: 1.0e-4")
    error = config_error(trials)
    assert error.where == str(path)
    assert str(error).startswith(f"{path}: ")
    assert "'lr_gg'" in str(error) and "did you mean 'lr_g'" in str(error)
    assert "families.tabular-a.params" in str(error)


def test_unknown_param_key_in_preset(trials):
    path = edit(trials / "presets" / "tiny.yaml", "{metric_trees: 10}", "{metric_tree: 10}")
    error = config_error(trials, "tiny")
    assert error.where == str(path)
    assert "did you mean 'metric_trees'" in str(error)


def test_wrong_param_type(trials):
    path = edit(trials / "tabular.yaml", "      lr_g: 1.0e-4", '      lr_g: "fast"')
    error = config_error(trials)
    assert error.where == str(path)
    assert "lr_g" in str(error) and "'fast'" in str(error) and "float" in str(error)


@pytest.mark.parametrize("line", ["      batch_size: 64.5", "      batch_size: true",
                                  "      g_hidden: [64, -1]", "      g_output: 3"])
def test_other_wrong_types(trials, line):
    key = line.split(":")[0]
    path = set_line(trials / "tabular.yaml", key + ":", line)
    error = config_error(trials)
    assert error.where == str(path)
    assert key.strip() in str(error)


def test_unknown_variant_param_key_suggests(trials):
    path = set_line(trials / "tabular.yaml", "        beta2:", "        beta_2: 0.9")
    error = config_error(trials, "full")
    assert error.where == str(path)
    assert "'beta_2'" in str(error) and "did you mean 'beta2'" in str(error)
    assert "families.tabular-a.variants.stable" in str(error)


def test_variant_params_are_type_checked(trials):
    path = set_line(trials / "tabular.yaml", "        g_batchnorm:", "        g_batchnorm: 1")
    error = config_error(trials, "full")
    assert error.where == str(path)
    assert "variants.stable.g_batchnorm" in str(error) and "bool" in str(error)


def test_unknown_variant_param_key_in_preset(trials):
    path = edit(trials / "presets" / "tiny.yaml", "    params: {metric_trees: 10}",
                "    params: {metric_trees: 10}\n    variants: {stable: {lr_gg: 3.0e-4}}")
    error = config_error(trials, "tiny")
    assert error.where == str(path)
    assert "'lr_gg'" in str(error) and "did you mean 'lr_g'" in str(error)
    assert "variants.stable" in str(error)


def test_variants_must_be_a_mapping(trials):
    path = edit(trials / "presets" / "tiny.yaml", "    params: {metric_trees: 10}",
                "    params: {metric_trees: 10}\n    variants: [stable]")
    error = config_error(trials, "tiny")
    assert error.where == str(path) and "variants" in str(error)


def test_search_value_must_be_list(trials):
    path = set_line(trials / "tabular.yaml", "      lr_g: [", "      lr_g: 1.0e-4")
    error = config_error(trials)
    assert error.where == str(path)
    assert "search.lr_g" in str(error) and "list" in str(error)


def test_search_list_items_are_type_checked(trials):
    path = set_line(trials / "tabular.yaml", "      lr_g: [", "      lr_g: [5.0e-5, x]")
    error = config_error(trials)
    assert error.where == str(path) and "'x'" in str(error)


def test_empty_search_list(trials):
    set_line(trials / "tabular.yaml", "      lr_g: [", "      lr_g: []")
    assert "non-empty list" in str(config_error(trials))


def test_search_must_be_a_mapping(trials):
    path = edit(trials / "presets" / "tiny.yaml", "    search:\n      variant: [stable]",
                "    search: [stable]")
    error = config_error(trials, "tiny")
    assert error.where == str(path) and "search" in str(error)


@pytest.mark.parametrize("value", ["stable", "[]", "{stable: 1}", "3"])
def test_search_variant_must_be_a_list(trials, value):
    path = set_line(trials / "tabular.yaml", "      variant:", f"      variant: {value}")
    error = config_error(trials, "full")
    assert error.where == str(path)
    assert "search.variant must be a non-empty list" in str(error)


def test_search_variant_null_refused(trials):
    path = set_line(trials / "tabular.yaml", "      variant:", "      variant: null")
    error = config_error(trials, "full")
    assert error.where == str(path) and "search.variant" in str(error)


def test_search_variant_must_be_a_list_in_preset(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: stable")
    error = config_error(trials, "tiny")
    assert error.where == str(path)
    assert "search.variant must be a non-empty list" in str(error)


def test_search_variant_names_must_be_strings(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: [[stable]]")
    error = config_error(trials, "tiny")
    assert error.where == str(path) and "search.variant" in str(error)


def test_unknown_variant_name_in_family_file(trials):
    path = edit(trials / "tabular.yaml", "variant: [report, stable]", "variant: [report, stabel]")
    error = config_error(trials, "full")  # full keeps the family's search
    assert error.where == str(path)
    assert "'stabel'" in str(error) and "did you mean 'stable'" in str(error)
    assert "families.tabular-a.search.variant" in str(error)


def test_unknown_variant_name_in_preset(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: [stabel]")
    error = config_error(trials, "tiny")
    assert error.where == str(path)
    assert "'stabel'" in str(error) and "did you mean 'stable'" in str(error)


def test_unknown_variant_name_blames_family_file_when_preset_only_sets_params(trials):
    family = edit(trials / "tabular.yaml", "variant: [report, stable]", "variant: [reprot]")
    (trials / "presets" / "full.yaml").write_text(
        "families:\n  tabular-a:\n    params: {metric_trees: 5}\n")
    error = config_error(trials, "full")
    assert error.where == str(family)
    assert "'reprot'" in str(error) and "did you mean 'report'" in str(error)


def test_unknown_variant_name_blames_preset_that_touches_variants(trials):
    edit(trials / "tabular.yaml", "variant: [report, stable]", "variant: [reprot]")
    preset = trials / "presets" / "full.yaml"
    preset.write_text("families:\n  tabular-a:\n    variants: {report: {lr_g: 3.0e-4}}\n")
    error = config_error(trials, "full")
    assert error.where == str(preset)
    assert "'reprot'" in str(error)


def test_variant_names_are_checked_after_the_preset_merge(trials):
    edit(trials / "tabular.yaml", "variant: [report, stable]", "variant: [report, stabel]")
    config_error(trials, "full")
    # smoke replaces the whole search, so the family file's bad name never reaches a trial.
    assert load_config(trials, "smoke")["families"][FAMILY]["search"] == {
        VARIANT_AXIS: ["report", "stable"]}


@pytest.mark.parametrize("value", ["-5", "0", "2.5", "ten"])
def test_bad_epochs(trials, value):
    path = set_line(trials / "tabular.yaml", "    epochs:", f"    epochs: {value}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "epochs must be a positive integer" in str(error)


def test_boolean_epochs_refused(trials):
    set_line(trials / "tabular.yaml", "    epochs:", "    epochs: yes")
    assert "epochs must be a positive integer" in str(config_error(trials))


def test_bad_select_mode(trials):
    path = edit(trials / "tabular.yaml", "mode: max", "mode: biggest")
    error = config_error(trials)
    assert error.where == str(path)
    assert "select.mode" in str(error)


def test_bad_select_mode_in_preset(trials):
    path = set_line(trials / "presets" / "smoke.yaml", "    epochs:",
                    "    epochs: 200\n    select: {mode: up}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "select.mode" in str(error)


def test_preset_names_unknown_family(trials):
    path = edit(trials / "presets" / "smoke.yaml", "  tabular-a:", "  tabular-b:")
    error = config_error(trials)
    assert error.where == str(path)
    assert "'tabular-b'" in str(error) and "did you mean 'tabular-a'" in str(error)


def test_unknown_preset_lists_known(trials):
    error = config_error(trials, "huge")
    assert "'huge'" in str(error)
    assert "known presets: full, smoke, tiny" in str(error)
    assert error.where == str(trials / "presets" / "huge.yaml")


def test_invalid_yaml_reports_line(trials):
    path = trials / "tabular.yaml"
    line = line_of(path, "    epochs:")
    set_line(path, "    epochs:", "    epochs: 100: 3")
    error = config_error(trials)
    assert error.where == str(path)
    assert f"YAML syntax error at line {line}" in str(error)


def test_invalid_yaml_in_preset_reports_line(trials):
    path = trials / "presets" / "smoke.yaml"
    edit(path, "      variant: [report, stable]", "      variant: [report, stable")
    error = config_error(trials)
    assert error.where == str(path)
    assert "YAML syntax error at line" in str(error)


def test_unknown_kind(trials):
    path = edit(trials / "tabular.yaml", "    kind: tabular", "    kind: tabulr")
    error = config_error(trials)
    assert error.where == str(path) and "'tabulr'" in str(error)


def test_unknown_top_level_and_data_keys(trials):
    edit(trials / "data.yaml", "  split_seed: 0", "  split_seeds: 0")
    error = config_error(trials)
    assert error.where == str(trials / "data.yaml")
    assert "did you mean 'split_seed'" in str(error)


def test_bad_test_fraction(trials):
    edit(trials / "data.yaml", "    test_fraction: 0.3 ", "    test_fraction: 1.5 ")
    error = config_error(trials)
    assert error.where == str(trials / "data.yaml") and "1.5" in str(error)


def test_family_defined_twice(trials):
    shutil.copy(trials / "tabular.yaml", trials / "tabular2.yaml")
    error = config_error(trials)
    assert error.where == str(trials / "tabular2.yaml")
    assert "defined twice" in str(error)


def test_missing_trials_folder(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere", "smoke")
    assert str(tmp_path / "nowhere") in str(info.value)


# ---------------------------------------------------------------- the plan


def test_plan_full_is_datasets_times_grid():
    family = load_config(TRIALS, "full")["families"][FAMILY]
    trials = plan_trials({FAMILY: family}, base_seed=100)
    lrs = family["search"]["lr_g"]
    assert len(trials) == 2 * 2 * len(lrs)
    assert [t["index"] for t in trials] == list(range(len(trials)))
    half = len(trials) // 2
    assert [t["dataset"] for t in trials] == ["german_credit"] * half + ["diabetes"] * half
    points = {(t["dataset"], t["params"]["lr_g"], t["tag"]) for t in trials}
    assert len(points) == len(trials)
    assert len({t["seed"] for t in trials}) == len(trials)
    assert trials[0]["seed"] == 100
    for trial in trials:
        assert trial["family"] == FAMILY and trial["kind"] == "tabular"
        assert trial["epochs"] == family["epochs"] and trial["eval_every"] == family["eval_every"]
        assert trial["resources"] == {"cpu": 1, "gpu": 0.1}
        assert trial["select"] == {"metric": "select/score", "mode": "max"}
        assert trial["keep_checkpoints"] == 2
        assert trial["params"]["flip_every"] == (10 if trial["dataset"] == "diabetes" else 1)
        assert trial["params"]["noise_dim"] == 20
        assert VARIANT_AXIS not in trial["params"]
        KINDS["tabular"].params(**trial["params"])  # every planned point builds
    assert trials[0]["tag"] == "lr_g=0.0001,variant=report"


def test_plan_tags_name_the_variant():
    trials = plan_trials(load_config(TRIALS, "full")["families"], base_seed=0)
    tags = [t["tag"] for t in trials if t["dataset"] == "german_credit"]
    assert tags == ["lr_g=0.0001,variant=report", "lr_g=0.0001,variant=stable",
                    "lr_g=0.0002,variant=report", "lr_g=0.0002,variant=stable"]
    for trial in trials:
        variant = trial["tag"].split("variant=")[1]
        expected = "blockwise" if variant == "stable" else "capped_relu"
        assert trial["params"]["g_output"] == expected


@pytest.mark.parametrize("preset, count", [("smoke", 4), ("tiny", 2)])
def test_plan_sizes_of_presets(preset, count):
    trials = plan_trials(load_config(TRIALS, preset)["families"], base_seed=0)
    assert len(trials) == count
    diabetes = [t for t in trials if t["dataset"] == "diabetes"]
    assert diabetes and all(t["params"]["flip_every"] == 10 for t in diabetes)
    if preset == "tiny":
        assert [t["tag"] for t in trials] == ["variant=stable", "variant=stable"]
        assert all(t["epochs"] == 4 and t["params"]["metric_trees"] == 10 for t in trials)
        assert all(t["params"]["loss"] == "wasserstein" for t in trials)
    else:
        assert [t["tag"] for t in trials] == ["variant=report", "variant=stable"] * 2
        by_tag = {t["tag"]: t["params"] for t in trials if t["dataset"] == "german_credit"}
        assert by_tag["variant=report"]["lr_g"] == 1.0e-4   # params, untouched by `report`
        assert by_tag["variant=stable"]["lr_g"] == 2.0e-4   # the bundle's value
        assert by_tag["variant=report"]["lr_d"] == 1.0e-4   # lr_d is not searched any more
        assert by_tag["variant=stable"]["real_label"] == 1.0


def test_report_variant_is_params_plus_per_dataset():
    file = family_file()
    trials = plan_trials(load_config(TRIALS, "smoke")["families"], base_seed=0)
    for trial in (t for t in trials if t["tag"] == "variant=report"):
        per_dataset = file["per_dataset"].get(trial["dataset"], {})
        assert trial["params"] == {**file["params"], **per_dataset}


def test_variant_value_wins_over_per_dataset():
    families = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    families[FAMILY]["variants"]["stable"]["flip_every"] = 4
    trials = plan_trials(families, base_seed=0)
    assert [(t["dataset"], t["params"]["flip_every"]) for t in trials] == [
        ("german_credit", 4), ("diabetes", 4)]  # diabetes' per_dataset 10 loses


def test_variant_value_wins_over_per_dataset_via_yaml(trials):
    edit(trials / "tabular.yaml", "        g_batchnorm: true",
         "        g_batchnorm: true\n        flip_every: 4")
    planned = plan_trials(load_config(trials, "smoke")["families"], base_seed=0)
    flips = {(t["dataset"], t["tag"]): t["params"]["flip_every"] for t in planned}
    assert flips == {("german_credit", "variant=report"): 1, ("german_credit", "variant=stable"): 4,
                     ("diabetes", "variant=report"): 10, ("diabetes", "variant=stable"): 4}


def test_searched_value_wins_over_variant():
    trials = plan_trials(load_config(TRIALS, "full")["families"], base_seed=0)
    stable = [t for t in trials if t["tag"].endswith("variant=stable")]
    assert len(stable) == 4
    for trial in stable:
        searched = float(trial["tag"].split(",")[0].removeprefix("lr_g="))
        assert trial["params"]["lr_g"] == searched      # not the bundle's 2e-4 ...
        assert trial["params"]["lr_d"] == 2.0e-4         # ... while unsearched keys keep it
    assert sorted({t["params"]["lr_g"] for t in stable}) == [1.0e-4, 2.0e-4]


def test_precedence_params_per_dataset_variant_search():
    """One key set at every level: params < per_dataset < variant < searched."""
    base = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    section = base[FAMILY]
    section["params"]["flip_every"] = 1
    section["per_dataset"] = {"diabetes": {"flip_every": 10}}
    section["variants"]["stable"]["flip_every"] = 4

    def flips(search):
        families = copy.deepcopy(base)
        families[FAMILY]["search"] = search
        return [(t["dataset"], t["params"]["flip_every"]) for t in plan_trials(families, 0)]

    assert flips({}) == [("german_credit", 1), ("diabetes", 10)]
    assert flips({VARIANT_AXIS: ["report"]}) == [("german_credit", 1), ("diabetes", 10)]
    assert flips({VARIANT_AXIS: ["stable"]}) == [("german_credit", 4), ("diabetes", 4)]
    assert flips({VARIANT_AXIS: ["stable"], "flip_every": [7]}) == [
        ("german_credit", 7), ("diabetes", 7)]


def test_search_value_wins_over_per_dataset():
    families = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    families[FAMILY]["search"] = {"flip_every": [3, 5]}
    trials = plan_trials(families, base_seed=0)
    assert len(trials) == 4
    assert {(t["dataset"], t["params"]["flip_every"]) for t in trials} == {
        ("german_credit", 3), ("german_credit", 5), ("diabetes", 3), ("diabetes", 5)}
    assert [t["tag"] for t in trials[:2]] == ["flip_every=3", "flip_every=5"]


def test_search_value_wins_via_yaml(trials):
    edit(trials / "presets" / "tiny.yaml", "      variant: [stable]",
         "      variant: [stable]\n      flip_every: [7]")
    trials_list = plan_trials(load_config(trials, "tiny")["families"], base_seed=0)
    assert [t["params"]["flip_every"] for t in trials_list] == [7, 7]
    assert [t["tag"] for t in trials_list] == ["flip_every=7,variant=stable"] * 2


def test_plan_seeds_and_datasets_override():
    families = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    families[FAMILY]["seeds"] = 2
    trials = plan_trials(families, base_seed=5, datasets_override=["diabetes"])
    assert [t["dataset"] for t in trials] == ["diabetes", "diabetes"]
    assert [t["tag"] for t in trials] == ["variant=stable", "variant=stable,seed#1"]
    assert trials[0]["seed"] != trials[1]["seed"]
    assert all(t["params"]["flip_every"] == 10 for t in trials)
    assert trials[0]["params"] == trials[1]["params"]


def test_plan_without_search_is_defaults():
    families = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    families[FAMILY]["search"] = {}
    trials = plan_trials(families, base_seed=0)
    assert [t["tag"] for t in trials] == ["defaults", "defaults"]
    assert all(t["params"]["g_output"] == "capped_relu" for t in trials)  # no bundle applied


def test_plan_without_datasets():
    families = copy.deepcopy(load_config(TRIALS, "tiny")["families"])
    families[FAMILY]["datasets"] = []
    with pytest.raises(ConfigError, match="lists no datasets"):
        plan_trials(families, base_seed=0)


def test_format_plan():
    trials = plan_trials(load_config(TRIALS, "tiny")["families"], base_seed=0)
    text = format_plan(trials, gpus_available=False).splitlines()
    assert len(text) == 3
    assert text[0].split() == ["#", "family", "dataset", "setting", "epochs", "cpu", "gpu"]
    assert text[2].split() == ["1", FAMILY, "diabetes", "variant=stable", "4", "1", "0"]
    assert format_plan(trials, gpus_available=True).splitlines()[1].split()[-1] == "0.1"


def test_select_families():
    config = load_config(TRIALS, "smoke")
    assert list(select_families(config, None)) == [FAMILY]
    assert list(select_families(config, [])) == [FAMILY]
    assert list(select_families(config, [" tabular-a ", ""])) == [FAMILY]
    with pytest.raises(ConfigError) as info:
        select_families(config, ["tabular-a", "tabular-z"])
    assert "'tabular-z'" in str(info.value) and "tabular-a" in str(info.value)
    assert "\n" not in str(info.value)
