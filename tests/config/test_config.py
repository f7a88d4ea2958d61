"""trials/*.yaml + presets: loading, every checked mistake, preset merging, and the trial plan.

Two kinds of tests live here:

* Exact behaviour (values, merging, precedence, error messages and their file/line, plan sizes and
  tags) runs against a tmp copy of the fixture in tests/fixtures/trials/, written for these tests
  and edited line by line. Tuning the farm's real trials/ never touches them.
* The repo's real trials/ is checked for properties only: every preset loads, every planned trial
  builds its family's params, every family selects on a metric its trials report, the presets
  scale the way their names promise. Those hold whatever values someone tunes.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import shutil
from pathlib import Path

import pytest
import yaml

import farm.families.image_common
import farm.metrics.tabular
import farm.metrics.usefulness
from farm.config.family_params import MODALITY, PARAMS, params_from
from farm.config.load import VARIANT_AXIS, load_config
from farm.config.plan import format_plan, plan_trials, select_families
from farm.families.kinds import KINDS
from farm.infra.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TRIALS = REPO / "trials"                                   # the farm's own: properties only
FIXTURE = REPO / "tests" / "fixtures" / "trials"   # exact values, edited copies
FAMILY = "tabular-a"                                       # the fixture's one family
FARM_PRESETS = ("smoke", "tiny", "full")                   # the fixture mirrors these three
NAMED_PRESETS = FARM_PRESETS + ("laptop",)                 # the presets the README / CLI name

# What every trial of a kind reports to Tune, i.e. what its `select.metric` may name. Adding a
# kind means adding its metrics here (test_reported_list_covers_every_kind insists).
SHARED_TABULAR = {"fidelity/score", "correlation_diff", "detection_auc", "utility/accuracy",
                  "utility/auc", "dcr/median", "dcr/p05", "dcr/exact_copies", "dcr/real_median",
                  "diversity"}  # farm.metrics.tabular.tabular_report, used by both kinds
REPORTED = {
    "tabular-a": SHARED_TABULAR | {"select/score"},
    "tabular-forest": SHARED_TABULAR | {"select/score"},
    "tabular-b": SHARED_TABULAR | {"confidence/error", "confidence/coverage", "balance/positive",
                                   "select/confidence"},
    "fruit-pairs": {"kid", "judge_accuracy", "diversity", "useful", "useful_accuracy"},
    "spiked": {"kid/mean", "judge_accuracy/mean", "diversity/mean", "useful",
                     "useful_accuracy"},
    "conditional": {"kid/mean", "judge_accuracy/mean", "diversity/mean", "useful",
                          "useful_accuracy"},
}
# Per-class families plan one trial per class: the real presets are planned with these.
CLASSES = {"fids30": ("apples", "bananas")}


def fixture_family() -> dict:
    """tabular-a exactly as the fixture's tabular.yaml writes it (no preset applied)."""
    return yaml.safe_load((FIXTURE / "tabular.yaml").read_text())["families"][FAMILY]


@pytest.fixture
def trials(tmp_path) -> Path:
    """A private copy of the fixture trials/ that a test may break."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "trials"))


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


def as_built(value):
    """How params_from stores a YAML value (lists become tuples)."""
    return tuple(value) if isinstance(value, list) else value


# ---------------------------------------------------------------- the repo's real trials/:
# ---------------------------------------------------------------- properties, never values


def real_presets() -> list[str]:
    return sorted(p.stem for p in (TRIALS / "presets").glob("*.yaml"))


def real_config(preset: str) -> dict:
    return load_config(TRIALS, preset)


def test_real_trials_have_the_farm_presets():
    assert set(NAMED_PRESETS) <= set(real_presets())


@pytest.mark.parametrize("preset", real_presets())
def test_real_preset_loads(preset):
    config = real_config(preset)
    assert config["preset"] == preset
    assert config["families"], "trials/ defines no family"
    assert set(config["families"]) == set(real_config("full")["families"])
    for name, family in config["families"].items():
        assert family["kind"] in KINDS, name
        assert family["datasets"], name
        searched = (family.get("search") or {}).get(VARIANT_AXIS, [])
        assert set(searched) <= set(family.get("variants") or {}), name


@pytest.mark.parametrize("preset", real_presets())
def test_real_planned_trials_build_their_params(preset):
    families = real_config(preset)["families"]
    planned = plan_trials(families, base_seed=0, classes=CLASSES)
    assert {t["family"] for t in planned} == set(families)  # no family plans zero trials
    for trial in planned:
        assert trial["kind"] == families[trial["family"]]["kind"]
        built = params_from(trial["kind"], trial["params"])
        assert isinstance(built, PARAMS[trial["kind"]])
        for key, value in trial["params"].items():
            assert getattr(built, key) == as_built(value), (trial["family"], trial["tag"], key)


def test_real_every_variant_builds_on_every_dataset():
    """Also the bundles no preset searches: each, over params and per_dataset, builds."""
    for name, family in real_config("full")["families"].items():
        for dataset in family["datasets"]:
            per_dataset = (family.get("per_dataset") or {}).get(dataset, {})
            for variant, bundle in (family.get("variants") or {}).items():
                built = params_from(family["kind"],
                                    {**family.get("params", {}), **per_dataset, **bundle})
                for key, value in bundle.items():
                    assert getattr(built, key) == as_built(value), (name, dataset, variant, key)


def test_real_conditional_family_writes_every_setting():
    """Its settings follow no report: trials/images.yaml states each one, none left implicit."""
    family = real_config("full")["families"]["conditional"]
    fields = {f.name for f in dataclasses.fields(PARAMS[family["kind"]])}
    assert set(family["params"]) == fields


def test_every_kind_has_settings_a_modality_and_functions():
    """A kind's settings and modality (farm/config, torch-free) and its functions
    (farm/families/kinds.py) are two tables; they name the same kinds."""
    assert set(PARAMS) == set(MODALITY) == set(KINDS)
    assert set(MODALITY.values()) == {"table", "image"}


def test_reported_list_covers_every_kind():
    assert set(REPORTED) == set(KINDS), "add the new kind's reported metrics to REPORTED"
    for kind, names in REPORTED.items():
        # The names are the code's: each is a string literal in the kind's module, the image
        # families' shared scoring or the shared tabular report, so a renamed metric fails
        # here, not hours into a run.
        source = (inspect.getsource(inspect.getmodule(KINDS[kind].evaluate))
                  + inspect.getsource(farm.families.image_common)
                  + inspect.getsource(farm.metrics.tabular)
                  + inspect.getsource(farm.metrics.usefulness))
        missing = sorted(n for n in names if f'"{n}"' not in source)
        assert not missing, (kind, missing)
    assert "select/score" not in REPORTED["tabular-b"]
    assert "confidence/error" not in REPORTED["tabular-a"]


@pytest.mark.parametrize("preset", real_presets())
def test_real_select_metric_is_reported(preset):
    for name, family in real_config(preset)["families"].items():
        select = family.get("select") or {}
        assert select.get("metric") in REPORTED[family["kind"]], (name, select)
        assert select.get("mode", "max") in ("max", "min"), name


def test_real_smoke_trains_less_than_full():
    full, smoke = real_config("full")["families"], real_config("smoke")["families"]
    for name in full:
        assert smoke[name]["epochs"] < full[name]["epochs"], name
        assert smoke[name]["eval_every"] <= smoke[name]["epochs"], name


def test_real_tiny_is_tiny():
    families = real_config("tiny")["families"]
    planned = plan_trials(families, base_seed=0, classes=CLASSES)
    for name, family in families.items():
        count = sum(t["family"] == name for t in planned)
        assert 1 <= count <= 2, (name, count)
        assert family["epochs"] <= real_config("smoke")["families"][name]["epochs"], name


@pytest.mark.parametrize("preset", real_presets())
def test_real_dry_run_plan(preset, tmp_path, capsys, shared_data):
    """What `run_farm.py --dry-run` prints: a non-empty plan, one row per trial."""
    from farm.pipeline.experiment import Settings, _image_classes, run

    settings = Settings(trials_dir=TRIALS, preset=preset, dry_run=True,
                        storage_path=str(tmp_path), name="dry", data_dir=str(shared_data))
    assert run(settings) is None
    out = capsys.readouterr().out
    config = real_config(preset)
    classes = _image_classes(config["families"], settings, config["data"])
    planned = plan_trials(config["families"], config["data"].get("split_seed", 0),
                          classes=classes)
    assert len(planned) > 0
    assert f"would grow {len(planned)} trials" in out
    assert format_plan(planned, gpus_available=False) in out
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


# ---------------------------------------------------------------- the fixture: exact values


def test_fixture_is_self_contained():
    """The fixture is one tabular-a family of kind tabular, independent of the real trials/."""
    assert sorted(p.name for p in FIXTURE.glob("*.yaml")) == ["data.yaml", "tabular.yaml"]
    assert sorted(p.stem for p in (FIXTURE / "presets").glob("*.yaml")) == sorted(FARM_PRESETS)
    assert list(yaml.safe_load((FIXTURE / "tabular.yaml").read_text())["families"]) == [FAMILY]


@pytest.mark.parametrize("preset", ["smoke", "full", "tiny"])
def test_fixture_loads(trials, preset):
    config = load_config(trials, preset)
    assert config["preset"] == preset
    assert list(config["families"]) == [FAMILY]
    family = config["families"][FAMILY]
    assert family["kind"] == "tabular-a"
    assert family["datasets"] == ["german_credit", "diabetes"]
    assert family["per_dataset"] == {"diabetes": {"flip_every": 10}}
    # No preset touches the bundles: `report` is the report as it is, `stable` the farm's fixes.
    assert family["variants"] == fixture_family()["variants"]
    assert family["variants"]["report"] == {}
    assert family["variants"]["stable"]["loss"] == "wasserstein"
    # Every variant a preset searches is one the family defines.
    assert set(family["search"][VARIANT_AXIS]) <= set(family["variants"])
    data = config["data"]
    assert data["split_seed"] == 0
    assert data["tables"] == {"test_fraction": 0.3, "val_fraction": 0.2, "missing": "drop",
                              "synthetic_rows": 0}
    assert data["images"] == {"test_fraction": 0.2, "size": 64}


def test_every_variant_is_a_valid_param_bundle(trials):
    """Each bundle, laid over params, must build the kind's params dataclass."""
    family = load_config(trials, "full")["families"][FAMILY]
    params_type = PARAMS[family["kind"]]
    for name, bundle in family["variants"].items():
        built = params_from(family["kind"], {**family["params"], **bundle})
        assert isinstance(built, params_type)
        for key, value in bundle.items():
            assert getattr(built, key) == value, (name, key)


def test_full_preset_keeps_family_settings(trials):
    family = load_config(trials, "full")["families"][FAMILY]
    assert family == fixture_family()  # full.yaml touches no family setting
    smoke = load_config(trials, "smoke")["families"][FAMILY]
    assert family["epochs"] == 300 and smoke["epochs"] == 30
    assert family["search"][VARIANT_AXIS] == ["report", "stable"]
    assert sorted(family["search"]) == ["lr_g", VARIANT_AXIS]  # lr_d, flip_fraction not searched
    assert family["search"]["lr_g"] == [1.0e-4, 2.0e-4]
    assert family["params"]["metric_trees"] == 50
    assert family["params"]["g_hidden"] == [64, 128, 256]


def test_smoke_preset_replaces_search_whole(trials):
    family = load_config(trials, "smoke")["families"][FAMILY]
    assert family["epochs"] == 30 and family["eval_every"] == 5
    assert family["search"] == {VARIANT_AXIS: ["report", "stable"]}  # the lr_g axis is gone
    assert family["params"] == fixture_family()["params"]
    assert family["params"]["lr_g"] == 1.0e-4 and family["params"]["noise_dim"] == 20


def test_tiny_preset_merges_params_key_by_key(trials):
    family = load_config(trials, "tiny")["families"][FAMILY]
    assert family["epochs"] == 4 and family["eval_every"] == 2
    assert family["search"] == {VARIANT_AXIS: ["stable"]}
    assert family["params"]["metric_trees"] == 10           # from the preset
    assert family["params"]["noise_dim"] == 20               # kept from tabular.yaml
    assert family["params"] == {**fixture_family()["params"], "metric_trees": 10}
    assert family["variants"] == fixture_family()["variants"]
    assert family["select"] == {"metric": "select/score", "mode": "max"}
    assert family["resources"] == {"cpu": 1, "gpu": 0.1}


def test_loading_does_not_mutate_between_presets(trials):
    tiny = load_config(trials, "tiny")
    tiny["families"][FAMILY]["variants"]["stable"]["lr_g"] = 9.0
    full = load_config(trials, "full")
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
    original = fixture_family()["variants"]
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


def test_an_impossible_setting_is_refused_when_planned_naming_the_family():
    """A value of the right type but out of range fails in the driver, once, not in trials."""
    family = load_config(REPO / "trials", "smoke")["families"]["tabular-b"]
    family = {**family, "search": {"variant": ["anchored"], "pick_best_of": [0]}}
    with pytest.raises(ConfigError, match=r"family 'tabular-b' .*pick_best_of must be at least 1"):
        plan_trials({"tabular-b": family}, base_seed=0)


def test_a_shared_start_outside_the_pairs_is_refused_when_planned():
    """`spiked` shares fruit-pairs' settings class; a shared start it would ignore is a mistake."""
    families = load_config(REPO / "trials", "smoke")["families"]
    spiked = {**families["spiked"], "params": {**families["spiked"]["params"], "shared_start": 5}}
    with pytest.raises(ConfigError, match=r"family 'spiked' .*shared_start is a setting of "
                                          r"fruit-pairs only"):
        plan_trials({"spiked": spiked}, base_seed=0)
    pairs = {**families["fruit-pairs"], "params": {**families["fruit-pairs"]["params"],
                                                    "shared_start": 5}}
    assert plan_trials({"fruit-pairs": pairs}, base_seed=0, classes={"fids30": ("apples",)})


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


def test_per_dataset_params_are_checked(trials):
    path = edit(trials / "tabular.yaml", "diabetes: {flip_every: 10}", "diabetes: {flip_evry: 10}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "families.tabular-a.per_dataset.diabetes" in str(error)
    assert "did you mean 'flip_every'" in str(error)


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


def test_search_variant_named_twice(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: [stable, stable]")
    error = config_error(trials, "tiny")
    assert error.where == str(path) and "names a variant twice" in str(error)


def test_search_variant_must_be_a_list_in_preset(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: stable")
    error = config_error(trials, "tiny")
    assert error.where == str(path)
    assert "search.variant must be a non-empty list" in str(error)


def test_search_variant_names_must_be_strings(trials):
    path = edit(trials / "presets" / "tiny.yaml", "variant: [stable]", "variant: [[stable]]")
    error = config_error(trials, "tiny")
    assert error.where == str(path) and "search.variant" in str(error)


def test_search_variant_without_variants(trials):
    path = trials / "tabular.yaml"
    text = path.read_text()
    start, end = text.index("    variants:\n"), text.index("    search:\n")
    path.write_text(text[:start] + text[end:])
    error = config_error(trials, "full")
    assert error.where == str(path)
    assert "search.variant is set but the family defines no variants" in str(error)


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


@pytest.mark.parametrize("value", ["yes", "true"])
def test_boolean_epochs_refused(trials, value):
    path = set_line(trials / "tabular.yaml", "    epochs:", f"    epochs: {value}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "epochs must be a positive integer" in str(error)


@pytest.mark.parametrize("key", ["eval_every", "keep_checkpoints", "seeds"])
def test_other_counts_must_be_positive_integers(trials, key):
    path = set_line(trials / "tabular.yaml", f"    {key}:", f"    {key}: 0")
    error = config_error(trials)
    assert error.where == str(path)
    assert f"{key} must be a positive integer" in str(error)


def test_bad_select_mode(trials):
    path = edit(trials / "tabular.yaml", "mode: max", "mode: biggest")
    error = config_error(trials)
    assert error.where == str(path)
    assert "select.mode" in str(error)


def test_bad_select_mode_in_preset(trials):
    path = set_line(trials / "presets" / "smoke.yaml", "    epochs:",
                    "    epochs: 20\n    select: {mode: up}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "select.mode" in str(error)


def test_unknown_resource_key(trials):
    path = edit(trials / "tabular.yaml", "{cpu: 1, gpu: 0.1}", "{cpu: 1, gpus: 0.1}")
    error = config_error(trials)
    assert error.where == str(path)
    assert "'gpus'" in str(error) and "did you mean 'gpu'" in str(error)


def test_preset_names_unknown_family(trials):
    path = edit(trials / "presets" / "smoke.yaml", "  tabular-a:", "  tabular-z:")
    error = config_error(trials)
    assert error.where == str(path)
    assert "'tabular-z'" in str(error) and "did you mean 'tabular-a'" in str(error)


def test_unknown_preset_lists_known(trials):
    error = config_error(trials, "huge")
    assert "'huge'" in str(error)
    assert "known presets: full, smoke, tiny" in str(error)
    assert error.where == str(trials / "presets" / "huge.yaml")


def test_invalid_yaml_reports_line(trials):
    path = trials / "tabular.yaml"
    line = line_of(path, "    epochs:")
    assert line == 10  # the fixture's own layout, so the number below is a real check
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
    path = edit(trials / "tabular.yaml", "    kind: tabular-a", "    kind: tabulr")
    error = config_error(trials)
    assert error.where == str(path) and "'tabulr'" in str(error)


def test_kind_decides_which_params_are_known(trials):
    """c_low is a tabular-b (ConfidenceParams) field, not a tabular one."""
    edit(trials / "tabular.yaml", "      metric_trees: 50",
         "      metric_trees: 50\n      c_low: 0.1")
    error = config_error(trials)
    assert "'c_low'" in str(error) and "families.tabular-a.params" in str(error)
    edit(trials / "tabular.yaml", "    kind: tabular-a", "    kind: tabular-b")
    assert load_config(trials, "smoke")["families"][FAMILY]["params"]["c_low"] == 0.1


def test_unknown_top_level_and_data_keys(trials):
    edit(trials / "data.yaml", "  split_seed: 0", "  split_seeds: 0")
    error = config_error(trials)
    assert error.where == str(trials / "data.yaml")
    assert "did you mean 'split_seed'" in str(error)


def test_unknown_top_level_key(trials):
    path = trials / "tabular.yaml"
    edit(path, "families:\n", "familes:\n")
    error = config_error(trials)
    assert error.where == str(path) and "did you mean 'families'" in str(error)


def test_bad_test_fraction(trials):
    set_line(trials / "data.yaml", "    test_fraction: 0.3", "    test_fraction: 1.5")
    error = config_error(trials)
    assert error.where == str(trials / "data.yaml") and "1.5" in str(error)


@pytest.mark.parametrize("key,value", [("judge_filter", 0), ("judge_filter", 2.5),
                                       ("synthetic_per_class", 0), ("synthetic_per_class", True)])
def test_impossible_image_export_counts_name_the_file(trials, key, value):
    (trials / "presets" / "smoke.yaml").write_text(f"data:\n  images:\n    {key}: {value}\n")
    error = config_error(trials)
    assert error.where.endswith("smoke.yaml")
    assert f"data.images.{key} must be a whole number of at least 1" in error.problem


def test_family_defined_twice(trials):
    shutil.copy(trials / "tabular.yaml", trials / "tabular2.yaml")
    error = config_error(trials)
    assert error.where == str(trials / "tabular2.yaml")
    assert "defined twice" in str(error)


def test_missing_trials_folder(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nowhere", "smoke")
    assert str(tmp_path / "nowhere") in str(info.value)


# ---------------------------------------------------------------- the plan (fixture)


def fixture_families(trials_dir: Path, preset: str) -> dict:
    return copy.deepcopy(load_config(trials_dir, preset)["families"])


def test_plan_full_is_datasets_times_grid(trials):
    family = load_config(trials, "full")["families"][FAMILY]
    planned = plan_trials({FAMILY: family}, base_seed=100)
    assert len(planned) == 2 * 2 * 2  # datasets x variants x lr_g
    assert [t["index"] for t in planned] == list(range(len(planned)))
    assert [t["dataset"] for t in planned] == ["german_credit"] * 4 + ["diabetes"] * 4
    points = {(t["dataset"], t["params"]["lr_g"], t["tag"]) for t in planned}
    assert len(points) == len(planned)
    assert len({t["seed"] for t in planned}) == len(planned)
    assert all(0 <= t["seed"] < 2**31 for t in planned)
    for trial in planned:
        assert trial["family"] == FAMILY and trial["kind"] == "tabular-a"
        assert trial["epochs"] == 300 and trial["eval_every"] == 10
        assert trial["resources"] == {"cpu": 1, "gpu": 0.1}
        assert trial["select"] == {"metric": "select/score", "mode": "max"}
        assert trial["keep_checkpoints"] == 2
        assert trial["params"]["flip_every"] == (10 if trial["dataset"] == "diabetes" else 1)
        assert trial["params"]["noise_dim"] == 20
        assert VARIANT_AXIS not in trial["params"]
        params_from("tabular-a", trial["params"])  # every planned point builds
    assert planned[0]["tag"] == "lr_g=0.0001,variant=report"


def test_plan_tags_name_the_variant(trials):
    planned = plan_trials(load_config(trials, "full")["families"], base_seed=0)
    tags = [t["tag"] for t in planned if t["dataset"] == "german_credit"]
    assert tags == ["lr_g=0.0001,variant=report", "lr_g=0.0001,variant=stable",
                    "lr_g=0.0002,variant=report", "lr_g=0.0002,variant=stable"]
    for trial in planned:
        variant = trial["tag"].split("variant=")[1]
        expected = "blockwise" if variant == "stable" else "capped_relu"
        assert trial["params"]["g_output"] == expected


@pytest.mark.parametrize("preset, count", [("smoke", 4), ("tiny", 2), ("full", 8)])
def test_plan_sizes_of_presets(trials, preset, count):
    planned = plan_trials(load_config(trials, preset)["families"], base_seed=0)
    assert len(planned) == count
    diabetes = [t for t in planned if t["dataset"] == "diabetes"]
    assert diabetes and all(t["params"]["flip_every"] == 10 for t in diabetes)
    if preset == "tiny":
        assert [t["tag"] for t in planned] == ["variant=stable", "variant=stable"]
        assert all(t["epochs"] == 4 and t["params"]["metric_trees"] == 10 for t in planned)
        assert all(t["params"]["loss"] == "wasserstein" for t in planned)
    elif preset == "smoke":
        assert [t["tag"] for t in planned] == ["variant=report", "variant=stable"] * 2
        by_tag = {t["tag"]: t["params"] for t in planned if t["dataset"] == "german_credit"}
        assert by_tag["variant=report"]["lr_g"] == 1.0e-4   # params, untouched by `report`
        assert by_tag["variant=stable"]["lr_g"] == 2.0e-4   # the bundle's value
        assert by_tag["variant=report"]["lr_d"] == 1.0e-4   # lr_d is not searched
        assert by_tag["variant=stable"]["real_label"] == 1.0


def test_report_variant_is_params_plus_per_dataset(trials):
    file = fixture_family()
    planned = plan_trials(load_config(trials, "smoke")["families"], base_seed=0)
    reports = [t for t in planned if t["tag"] == "variant=report"]
    assert len(reports) == 2
    for trial in reports:
        per_dataset = file["per_dataset"].get(trial["dataset"], {})
        assert trial["params"] == {**file["params"], **per_dataset}


def test_variant_value_wins_over_per_dataset(trials):
    families = fixture_families(trials, "tiny")
    families[FAMILY]["variants"]["stable"]["flip_every"] = 4
    planned = plan_trials(families, base_seed=0)
    assert [(t["dataset"], t["params"]["flip_every"]) for t in planned] == [
        ("german_credit", 4), ("diabetes", 4)]  # diabetes' per_dataset 10 loses


def test_variant_value_wins_over_per_dataset_via_yaml(trials):
    edit(trials / "tabular.yaml", "        g_batchnorm: true",
         "        g_batchnorm: true\n        flip_every: 4")
    planned = plan_trials(load_config(trials, "smoke")["families"], base_seed=0)
    flips = {(t["dataset"], t["tag"]): t["params"]["flip_every"] for t in planned}
    assert flips == {("german_credit", "variant=report"): 1, ("german_credit", "variant=stable"): 4,
                     ("diabetes", "variant=report"): 10, ("diabetes", "variant=stable"): 4}


def test_searched_value_wins_over_variant(trials):
    planned = plan_trials(load_config(trials, "full")["families"], base_seed=0)
    stable = [t for t in planned if t["tag"].endswith("variant=stable")]
    assert len(stable) == 4
    for trial in stable:
        searched = float(trial["tag"].split(",")[0].removeprefix("lr_g="))
        assert trial["params"]["lr_g"] == searched      # not the bundle's 2e-4 ...
        assert trial["params"]["lr_d"] == 2.0e-4         # ... while unsearched keys keep it
    assert sorted({t["params"]["lr_g"] for t in stable}) == [1.0e-4, 2.0e-4]


def test_precedence_params_per_dataset_variant_search(trials):
    """One key set at every level: params < per_dataset < variant < searched."""
    base = fixture_families(trials, "tiny")
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


def test_search_value_wins_over_per_dataset(trials):
    families = fixture_families(trials, "tiny")
    families[FAMILY]["search"] = {"flip_every": [3, 5]}
    planned = plan_trials(families, base_seed=0)
    assert len(planned) == 4
    assert {(t["dataset"], t["params"]["flip_every"]) for t in planned} == {
        ("german_credit", 3), ("german_credit", 5), ("diabetes", 3), ("diabetes", 5)}
    assert [t["tag"] for t in planned[:2]] == ["flip_every=3", "flip_every=5"]


def test_search_value_wins_via_yaml(trials):
    edit(trials / "presets" / "tiny.yaml", "      variant: [stable]",
         "      variant: [stable]\n      flip_every: [7]")
    planned = plan_trials(load_config(trials, "tiny")["families"], base_seed=0)
    assert [t["params"]["flip_every"] for t in planned] == [7, 7]
    assert [t["tag"] for t in planned] == ["flip_every=7,variant=stable"] * 2


def test_a_trial_keeps_its_seed_whatever_else_is_planned():
    """`--only`, another family or another dataset beside it must not change the seed a trial
    grows from: the same trial alone starts from the seed it had in the whole farm."""
    families = load_config(TRIALS, "smoke")["families"]

    def plan(chosen, base=3, **kw):
        return {(t["family"], t["dataset"], t["class"], t["tag"]): t["seed"]
                for t in plan_trials(chosen, base, classes=CLASSES, **kw)}

    whole = plan(families)
    alone = plan({"fruit-pairs": families["fruit-pairs"]})
    reordered = plan(dict(reversed(list(families.items()))))
    one_dataset = plan({"tabular-a": families["tabular-a"]},
                       datasets_override={"table": ["diabetes"]})
    assert alone and set(alone) < set(whole) and one_dataset
    assert all(whole[key] == seed for key, seed in {**alone, **one_dataset}.items())
    assert reordered == whole
    assert len(set(whole.values())) == len(whole)
    other_base = plan({"fruit-pairs": families["fruit-pairs"]}, base=4)
    assert all(other_base[key] != seed for key, seed in alone.items())


def test_plan_seeds_and_datasets_override(trials):
    families = fixture_families(trials, "tiny")
    families[FAMILY]["seeds"] = 2
    planned = plan_trials(families, base_seed=5, datasets_override={"table": ["diabetes"]})
    assert [t["dataset"] for t in planned] == ["diabetes", "diabetes"]
    assert [t["tag"] for t in planned] == ["variant=stable", "variant=stable,seed#1"]
    assert planned[0]["seed"] != planned[1]["seed"]
    assert all(t["params"]["flip_every"] == 10 for t in planned)
    assert planned[0]["params"] == planned[1]["params"]


def test_plan_without_search_is_defaults(trials):
    families = fixture_families(trials, "tiny")
    families[FAMILY]["search"] = {}
    planned = plan_trials(families, base_seed=0)
    assert [t["tag"] for t in planned] == ["defaults", "defaults"]
    assert all(t["params"]["g_output"] == "capped_relu" for t in planned)  # no bundle applied


def test_plan_without_datasets(trials):
    families = fixture_families(trials, "tiny")
    families[FAMILY]["datasets"] = []
    with pytest.raises(ConfigError, match="lists no datasets"):
        plan_trials(families, base_seed=0)


def test_format_plan(trials):
    planned = plan_trials(load_config(trials, "tiny")["families"], base_seed=0)
    text = format_plan(planned, gpus_available=False).splitlines()
    assert len(text) == 3
    assert text[0].split() == ["#", "family", "dataset", "class", "setting", "epochs", "cpu",
                               "gpu"]
    assert text[1].split() == ["0", FAMILY, "german_credit", "-", "variant=stable", "4", "1", "0"]
    assert text[2].split() == ["1", FAMILY, "diabetes", "-", "variant=stable", "4", "1", "0"]
    assert format_plan(planned, gpus_available=True).splitlines()[1].split()[-1] == "0.1"


def test_select_families(trials):
    config = load_config(trials, "smoke")
    assert list(select_families(config, None)) == [FAMILY]
    assert list(select_families(config, [])) == [FAMILY]
    assert list(select_families(config, [" tabular-a ", ""])) == [FAMILY]
    with pytest.raises(ConfigError) as info:
        select_families(config, ["tabular-a", "tabular-z"])
    assert "'tabular-z'" in str(info.value) and "tabular-a" in str(info.value)
    assert "\n" not in str(info.value)


def test_select_families_keeps_the_asked_order(trials):
    """Two families, so --only's order and filtering are visible."""
    path = trials / "tabular.yaml"
    text = path.read_text()
    body = text[text.index("  tabular-a:\n"):]
    path.write_text(text + body.replace("  tabular-a:\n", "  tabular-c:\n", 1))
    config = load_config(trials, "smoke")
    assert list(select_families(config, None)) == [FAMILY, "tabular-c"]
    assert list(select_families(config, ["tabular-c", FAMILY])) == ["tabular-c", FAMILY]
    assert list(select_families(config, ["tabular-c"])) == ["tabular-c"]
    planned = plan_trials(select_families(config, ["tabular-c"]), base_seed=0)
    assert {t["family"] for t in planned} == {"tabular-c"}


def test_per_class_family_plans_one_trial_per_class():
    families = {"pairs": {"kind": "fruit-pairs", "datasets": ["fruit"], "per_class": True,
                          "epochs": 3, "params": {"g_width": 8},
                          "variants": {"a": {}, "b": {"optimizer": "adam"}},
                          "search": {"variant": ["a", "b"]}}}
    planned = plan_trials(families, base_seed=0, classes={"fruit": ("figs", "limes", "plums")})
    assert [(t["class"], t["tag"]) for t in planned] == [
        (c, f"variant={v}") for c in ("figs", "limes", "plums") for v in ("a", "b")]
    assert all(t["dataset"] == "fruit" for t in planned)
    assert planned[1]["params"] == {"g_width": 8, "optimizer": "adam"}
    assert plan_trials(families, base_seed=0, classes={}) == []  # no classes, no trials
    own = plan_trials(families, 0, datasets_override={"image": ["mine"]}, classes={"mine": ("x",)})
    assert [(t["dataset"], t["class"]) for t in own] == [("mine", "x"), ("mine", "x")]


# ---------------------------------------------------------------- the evaluator section


def test_real_evaluator_builds_for_every_preset_and_smoke_is_lighter():
    from farm.config.classifiers import evaluator_config

    built = {p: evaluator_config(real_config(p)["evaluator"]) for p in real_presets()}
    assert built["full"].arch == "resnet34"  # the fruit report's evaluator
    assert built["smoke"].epochs <= built["full"].epochs
    assert built["tiny"].epochs <= built["smoke"].epochs


def test_evaluator_typo_in_a_preset_suggests(trials):
    (trials / "presets" / "smoke.yaml").write_text("evaluator:\n  epoch: 3\n")
    error = config_error(trials)
    assert error.where.endswith("smoke.yaml") and "'epoch'" in error.problem
    assert "did you mean 'epochs'" in error.problem


@pytest.mark.parametrize("body,fragment", [("  epochs: 2.5", "should be a int"),
                                           ("  arch: vgg", "arch must be one of"),
                                           ("  workers: -1", "workers")])
def test_impossible_evaluator_settings_name_the_file(trials, body, fragment):
    (trials / "evaluator.yaml").write_text(f"evaluator:\n{body}\n")
    error = config_error(trials)
    assert error.where.endswith("evaluator.yaml") and fragment in error.problem


def test_preset_evaluator_merges_over_the_family_files(trials):
    (trials / "evaluator.yaml").write_text("evaluator:\n  arch: resnet18\n  epochs: 9\n")
    (trials / "presets" / "smoke.yaml").write_text("evaluator:\n  epochs: 3\n")
    assert load_config(trials, "smoke")["evaluator"] == {"arch": "resnet18", "epochs": 3}


# ---------------------------------------------------------------- sampled search and ASHA


def _sampled(trials, samples="    samples: 4", search="      lr_g: {loguniform: [1.0e-5, 1.0e-3]}"):
    edit(trials / "tabular.yaml", "    search:\n      variant: [report, stable]",
         f"{samples}\n    search:\n      variant: [report, stable]\n{search}")
    edit(trials / "presets" / "smoke.yaml", "      variant: [report, stable]",
         f"      variant: [report, stable]\n{search}")
    return trials


def test_samples_draw_settings_reproducibly_and_alike_for_every_dataset(trials):
    family = load_config(_sampled(trials), "smoke")["families"][FAMILY]
    planned = plan_trials({FAMILY: family}, base_seed=0)
    assert len(planned) == 4 * 2  # four draws, for each of the two datasets
    per_dataset = {d: [(t["tag"], t["params"]["lr_g"]) for t in planned if t["dataset"] == d]
                   for d in ("german_credit", "diabetes")}
    assert per_dataset["german_credit"] == per_dataset["diabetes"]
    assert all(1e-5 <= t["params"]["lr_g"] <= 1e-3 for t in planned)
    assert all(t["tag"].startswith("lr_g=") and ",variant=" in t["tag"] for t in planned)
    assert plan_trials({FAMILY: family}, base_seed=0) == planned
    assert plan_trials({FAMILY: family}, base_seed=1) != planned


def test_a_range_without_samples_is_refused(trials):
    _sampled(trials, samples="    seeds: 1")
    error = config_error(trials)
    assert "search.lr_g is a range" in error.problem and "samples" in error.problem


@pytest.mark.parametrize("search,fragment", [
    ("      lr_g: {normal: [1.0, 2.0]}", "must be a list of values or one of"),
    ("      lr_g: {loguniform: [0.0, 1.0]}", "low > 0"),
    ("      lr_g: {uniform: [2.0, 1.0]}", "need low < high"),
    ("      batch_size: {uniform: [16, 64]}", "needs a float setting")])
def test_bad_ranges_are_named(trials, search, fragment):
    error = config_error(_sampled(trials, search=search))
    assert fragment in error.problem


def _scheduled(trials, body: str):
    edit(trials / "tabular.yaml", "    select: {metric: select/score, mode: max}",
         f"    select: {{metric: select/score, mode: max}}\n    scheduler: {body}")
    return trials


def test_an_asha_scheduler_reaches_every_trial(trials):
    config = load_config(_scheduled(trials, "{kind: asha, grace_period: 50, smoothing: 3}"),
                         "full")
    planned = plan_trials({FAMILY: config["families"][FAMILY]}, base_seed=0)
    assert all(t["scheduler"] == {"kind": "asha", "grace_period": 50, "smoothing": 3}
               for t in planned)


@pytest.mark.parametrize("body,fragment", [
    ("{kind: pb, grace_period: 50}", "kind must be one of asha, pbt"),
    ("{kind: asha, grace_period: 50, mutations: {lr_g: [1.0e-4]}}", "unknown key 'mutations'"),
    ("{grace_period: 5}", "grace_period must be a whole number of epochs from eval_every"),
    ("{grace_period: 300}", "to below epochs (300)"),
    ("{grace_period: 50, reduction_factor: 1}", "reduction_factor must be a number >= 2"),
    ("{grace_period: 50, smoothing: 0}", "smoothing must be a positive number"),
    ("{grace_period: 50, smoothin: 2}", "did you mean 'smoothing'")])
def test_impossible_schedulers_are_named(trials, body, fragment):
    error = config_error(_scheduled(trials, body), "full")
    assert fragment in error.problem and error.where.endswith("tabular.yaml")


PBT = "{kind: pbt, grace_period: 50, perturbation_interval: 20, mutations: %s}"


def _population(trials):
    """The fixture family as a PBT population: one variant, sampled G rates."""
    edit(trials / "tabular.yaml", "      variant: [report, stable]\n      lr_g: [1.0e-4, 2.0e-4]",
         "      variant: [stable]\n      lr_g: {loguniform: [1.0e-5, 1.0e-3]}\n    samples: 4")
    return trials


def test_a_pbt_scheduler_reaches_every_trial(trials):
    body = PBT % "{lr_g: {loguniform: [1.0e-5, 1.0e-3]}, lr_d: [1.0e-4, 2.0e-4]}"
    config = load_config(_scheduled(_population(trials), body), "full")
    planned = plan_trials({FAMILY: config["families"][FAMILY]}, base_seed=0)
    assert len(planned) == 4 * 2
    assert all(t["scheduler"]["kind"] == "pbt" and t["scheduler"]["perturbation_interval"] == 20
               for t in planned)


@pytest.mark.parametrize("mutations,fragment", [
    ("{}", "mutations must name the settings PBT perturbs"),
    ("{lr_q: [1.0e-4]}", "did you mean 'lr_g'"),
    ("{batch_size: {uniform: [16, 64]}}", "needs a float setting"),
    ("{lr_g: {loguniform: [0.0, 1.0]}}", "low > 0")])
def test_impossible_pbt_mutations_are_named(trials, mutations, fragment):
    error = config_error(_scheduled(_population(trials), PBT % mutations), "full")
    assert fragment in error.problem and error.where.endswith("tabular.yaml")


def test_pbt_refuses_a_population_that_differs_in_what_it_does_not_mutate(trials):
    """Weights move between a group's trials: a second variant could be another model shape."""
    error = config_error(_scheduled(trials, PBT % "{lr_g: [1.0e-4, 2.0e-4]}"), "full")
    assert "search.variant" in error.problem and "differ only in the settings it mutates" \
        in error.problem


@pytest.mark.parametrize("extra,fragment", [
    ("perturbation_interval: 5", "perturbation_interval must be a whole number of epochs from "
                                 "eval_every (10)"),
    ("perturbation_interval: 20, quantile_fraction: 0.75", "quantile_fraction must be a number "
                                                          "in (0, 0.5]")])
def test_impossible_pbt_intervals_are_named(trials, extra, fragment):
    body = "{kind: pbt, grace_period: 50, %s, mutations: {lr_g: [1.0e-4]}}" % extra
    error = config_error(_scheduled(_population(trials), body), "full")
    assert fragment in error.problem


@pytest.mark.parametrize("select, problem", [
    ("{metric: select/score, mode: max, tie: kid}", "needs tie and tolerance together"),
    ("{metric: select/score, mode: max, tie: kid, tolerance: 0}", "tolerance must be a number"),
    ("{metric: select/score, mode: max, tie: kid, tolerance: 0.01, tie_mode: low}",
     "select.tie_mode must be 'max' or 'min'"),
    ("{metric: select/score, mode: max, floor: diversity}", "select.floor must map metric names"),
    ("{metric: select/score, mode: max, floor: {diversity: high}}",
     "select.floor must map metric names")])
def test_a_select_tie_break_needs_a_metric_a_positive_tolerance_and_a_mode(trials, select,
                                                                            problem):
    path = edit(trials / "tabular.yaml", "{metric: select/score, mode: max}", select)
    error = config_error(trials)
    assert error.where == str(path) and problem in str(error)


def test_a_select_tie_break_loads(trials):
    edit(trials / "tabular.yaml", "{metric: select/score, mode: max}",
         "{metric: select/score, mode: max, tie: detection_auc, tolerance: 0.01}")
    select = load_config(trials, "smoke")["families"][FAMILY]["select"]
    assert select == {"metric": "select/score", "mode": "max", "tie": "detection_auc",
                      "tolerance": 0.01}
    edit(trials / "tabular.yaml", "tolerance: 0.01}", "tolerance: 0.01, floor: {diversity: 0.2}}")
    select = load_config(trials, "smoke")["families"][FAMILY]["select"]
    assert select["floor"] == {"diversity": 0.2}


def test_gang_must_be_a_positive_integer(trials):
    path = set_line(trials / "tabular.yaml", "    seeds:", "    seeds: 1\n    gang: 0")
    error = config_error(trials)
    assert error.where == str(path)
    assert "gang must be a positive integer" in str(error)


def test_gang_is_refused_for_a_kind_that_grows_each_trial_alone(tmp_path):
    trials = Path(shutil.copytree(TRIALS, tmp_path / "trials"))
    (trials / "presets" / "ganged.yaml").write_text(
        "description: x\nfamilies:\n  conditional:\n    gang: 2\n")
    error = config_error(trials, "ganged")
    assert "families.conditional.gang: only tabular-a trials grow in gangs" in str(error)


def test_plan_carries_each_familys_gang_width(trials):
    families = select_families(load_config(trials, "smoke"), None)
    families[FAMILY]["gang"] = 4
    assert {t["gang"] for t in plan_trials(families, 0)} == {4}
