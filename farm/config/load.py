"""Reading `trials/*.yaml` and a preset into one checked configuration.

Every file is checked against the keys the code knows before anything runs, so a typo such as
`lr_gg` is one line naming the file and the key (with a suggestion), never a silent default.
Presets (`trials/presets/<name>.yaml`) override family settings; `search` is replaced whole.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml

from farm.config.classifiers import EvaluatorConfig
from farm.config.family_params import GANG_KINDS, PARAMS, kind_name
from farm.config.plan import DISTRIBUTIONS
from farm.infra.errors import ConfigError

FAMILY_KEYS = {"kind", "description", "datasets", "epochs", "eval_every", "resources", "select",
               "keep_checkpoints", "params", "per_dataset", "variants", "search", "seeds",
               "per_class", "samples", "scheduler", "gang"}
VARIANT_AXIS = "variant"  # a search axis over the family's named bundles of settings
RESOURCE_KEYS = {"cpu", "gpu"}
SELECT_KEYS = {"metric", "mode", "tie", "tie_mode", "tolerance", "floor"}
SCHEDULER_KEYS = {"asha": {"kind", "grace_period", "reduction_factor", "smoothing"},
                  "pbt": {"kind", "grace_period", "smoothing", "perturbation_interval",
                          "quantile_fraction", "mutations"}}
DATA_KEYS = {"split_seed", "tables", "images"}
TABLE_KEYS = {"test_fraction", "val_fraction", "missing", "synthetic_rows", "snap"}
IMAGE_KEYS = {"test_fraction", "val_fraction", "size", "classes", "judge",
              "synthetic_per_class", "judge_filter"}
TOP_KEYS = {"families", "data", "description", "evaluator"}
REPLACED = {"search", "datasets"}


def _suggest(key: str, allowed) -> str:
    close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(allowed))}"


def _check_keys(section: Any, allowed, where: Path, path: str) -> None:
    if not isinstance(section, dict):
        raise ConfigError(f"{path} must be a mapping, got {type(section).__name__}", where=where)
    for key in section:
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in {path}{_suggest(key, allowed)}", where=where)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError("no such file", where=path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"YAML syntax error{line}: {getattr(exc, 'problem', exc)}",
                          where=path) from None
    if data is None:
        return {}
    _check_keys(data, TOP_KEYS, path, "the file's top level")
    return data


def _check_mapping(section: Any, where: Path, path: str) -> None:
    if not isinstance(section, dict):
        raise ConfigError(f"{path} must be a mapping, got {type(section).__name__}", where=where)


def _check_variant_axis(names: Any, where: Path, path: str) -> None:
    if (not isinstance(names, list) or not names
            or not all(isinstance(n, str) for n in names)):
        raise ConfigError(f"{path} must be a non-empty list of variant names", where=where)
    if len(set(names)) != len(names):
        raise ConfigError(f"{path} names a variant twice", where=where)


def _check_params(values: Any, kind: str, where: Path, path: str, lists: bool = False) -> None:
    fields = {f.name: f for f in dataclasses.fields(PARAMS[kind])}
    _check_keys(values, fields, where, path)
    for key, value in values.items():
        default = fields[key].default
        if lists and isinstance(value, dict):
            _check_distribution(value, default, where, f"{path}.{key}")
            continue
        candidates = value if lists else [value]
        if lists and (not isinstance(value, list) or not value):
            raise ConfigError(f"{path}.{key} must be a non-empty list of values to search, or "
                              "{uniform: [low, high]} / {loguniform: [low, high]} with samples",
                              where=where)
        for item in candidates:
            if not _same_type(item, default):
                raise ConfigError(f"{path}.{key} = {item!r} should be a {type(default).__name__}",
                                  where=where)


def _check_distribution(value: dict, default: Any, where: Path, path: str) -> None:
    bounds = next(iter(value.values())) if len(value) == 1 else None
    name = next(iter(value)) if len(value) == 1 else None
    if name not in DISTRIBUTIONS or not isinstance(bounds, list) or len(bounds) != 2 \
            or not all(_same_type(b, 0.0) for b in bounds):
        raise ConfigError(f"{path} must be a list of values or one of "
                          f"{', '.join(f'{{{d}: [low, high]}}' for d in DISTRIBUTIONS)}",
                          where=where)
    if not isinstance(default, float) or isinstance(default, bool):
        raise ConfigError(f"{path}: a range needs a float setting; list the values instead",
                          where=where)
    low, high = bounds
    if not low < high or (name == "loguniform" and low <= 0):
        raise ConfigError(f"{path}: need low < high{' and low > 0' if name == 'loguniform' else ''}"
                          f", got [{low}, {high}]", where=where)


def _check_scheduler(name: str, section: dict, where: Path) -> None:
    """A scheduler section, and search ranges only where settings are sampled."""
    path = f"families.{name}"
    ranges = [k for k, v in (section.get("search") or {}).items() if isinstance(v, dict)]
    if ranges and not section.get("samples"):
        raise ConfigError(f"{path}.search.{ranges[0]} is a range: set {path}.samples (how "
                          "many settings to draw)", where=where)
    scheduler = section.get("scheduler")
    if section.get("gang", 1) > 1 and kind_name(section["kind"]) not in GANG_KINDS:
        raise ConfigError(f"{path}.gang: only {', '.join(GANG_KINDS)} trials grow in gangs; "
                          f"kind {section['kind']!r} grows each trial alone (gang: 1)",
                          where=where)
    if scheduler is None:
        return
    _check_mapping(scheduler, where, f"{path}.scheduler")
    kind = scheduler.get("kind", "asha")
    if kind not in SCHEDULER_KEYS:
        raise ConfigError(f"{path}.scheduler.kind must be one of {', '.join(SCHEDULER_KEYS)}, "
                          f"got {kind!r}", where=where)
    _check_keys(scheduler, SCHEDULER_KEYS[kind], where, f"{path}.scheduler")
    _check_epoch_span(path, "grace_period", section, scheduler, where)
    factor = scheduler.get("reduction_factor", 3)
    if not _same_type(factor, 0.0) or factor < 2:
        raise ConfigError(f"{path}.scheduler.reduction_factor must be a number >= 2, got "
                          f"{factor!r}", where=where)
    smoothing = scheduler.get("smoothing", 1)
    if isinstance(smoothing, bool) or not isinstance(smoothing, int) or smoothing < 1:
        raise ConfigError(f"{path}.scheduler.smoothing must be a positive number of evaluations,"
                          f" got {smoothing!r}", where=where)
    if kind == "pbt":
        _check_pbt(path, section, scheduler, where)


def _check_epoch_span(path: str, key: str, section: dict, scheduler: dict, where: Path) -> None:
    """A scheduler's span of epochs (grace period, perturbation interval): at least one
    evaluation, and shorter than the run."""
    value, every = scheduler.get(key), section.get("eval_every", 10)
    if isinstance(value, bool) or not isinstance(value, int) \
            or not every <= value < section["epochs"]:
        raise ConfigError(f"{path}.scheduler.{key} must be a whole number of epochs from "
                          f"eval_every ({every}) to below epochs ({section['epochs']}), "
                          f"got {value!r}", where=where)


def _check_pbt(path: str, section: dict, scheduler: dict, where: Path) -> None:
    """PBT moves weights between a group's trials, so they may differ only in what it mutates."""
    mutations = scheduler.get("mutations")
    if not isinstance(mutations, dict) or not mutations:
        raise ConfigError(f"{path}.scheduler.mutations must name the settings PBT perturbs, as "
                          "lists of values or {uniform|loguniform: [low, high]}", where=where)
    _check_params(mutations, section["kind"], where, f"{path}.scheduler.mutations", lists=True)
    fixed = [axis for axis, values in (section.get("search") or {}).items()
             if axis not in mutations and not (isinstance(values, list) and len(values) == 1)]
    if fixed:
        raise ConfigError(f"{path}.search.{fixed[0]}: with scheduler pbt the trials of a group may "
                          "differ only in the settings it mutates (weights move between them); "
                          f"add {fixed[0]} to scheduler.mutations or search one value",
                          where=where)
    _check_epoch_span(path, "perturbation_interval", section, scheduler, where)
    fraction = scheduler.get("quantile_fraction", 0.25)
    if not _same_type(fraction, 0.0) or not 0 < fraction <= 0.5:
        raise ConfigError(f"{path}.scheduler.quantile_fraction must be a number in (0, 0.5], got "
                          f"{fraction!r}", where=where)


def _same_type(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(isinstance(v, int) and v > 0 for v in value)
    return isinstance(value, type(default))


def _check_family(name: str, section: Any, kind: str | None, where: Path) -> str:
    """Check one family section (from a family file or a preset); returns its kind."""
    path = f"families.{name}"
    _check_keys(section, FAMILY_KEYS, where, path)
    kind = section.get("kind", kind)
    if kind not in PARAMS:
        raise ConfigError(f"{path}.kind must be one of {', '.join(sorted(PARAMS))}, got {kind!r}",
                          where=where)
    if "params" in section:
        _check_params(section["params"], kind, where, f"{path}.params")
    for group in ("variants", "per_dataset"):
        _check_mapping(section.get(group) or {}, where, f"{path}.{group}")
        for name, values in (section.get(group) or {}).items():
            _check_params(values, kind, where, f"{path}.{group}.{name}")
    if "search" in section:
        _check_mapping(section["search"] or {}, where, f"{path}.search")
        search = dict(section["search"] or {})
        if VARIANT_AXIS in search:
            _check_variant_axis(search.pop(VARIANT_AXIS), where, f"{path}.search.{VARIANT_AXIS}")
        _check_params(search, kind, where, f"{path}.search", lists=True)
    if "resources" in section:
        _check_keys(section["resources"], RESOURCE_KEYS, where, f"{path}.resources")
    if "select" in section:
        _check_keys(section["select"], SELECT_KEYS, where, f"{path}.select")
        select = section["select"]
        for key in ("mode", "tie_mode"):
            if select.get(key, "max") not in ("max", "min"):
                raise ConfigError(f"{path}.select.{key} must be 'max' or 'min'", where=where)
        if ("tie" in select) != ("tolerance" in select):
            raise ConfigError(f"{path}.select needs tie and tolerance together (a second metric "
                              "decides among values of the first within tolerance)", where=where)
        tolerance = select.get("tolerance", 1.0)
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
                or not tolerance > 0 or not isinstance(select.get("tie", ""), str):
            raise ConfigError(f"{path}.select.tolerance must be a number above 0 and "
                              f"select.tie a metric name, got {select.get('tolerance')!r} and "
                              f"{select.get('tie')!r}", where=where)
        floor = select.get("floor", {})
        if not isinstance(floor, dict) or not all(
                isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                for k, v in floor.items()):
            raise ConfigError(f"{path}.select.floor must map metric names to minimums, e.g. "
                              f"{{diversity: 0.2}}, got {floor!r}", where=where)
    for key in ("epochs", "eval_every", "keep_checkpoints", "seeds", "samples", "gang"):
        value = section.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{path}.{key} must be a positive integer, got {section[key]!r}",
                              where=where)
    return kind


def _check_variant_names(name: str, section: dict, where: Path) -> None:
    known = section.get("variants") or {}
    if (section.get("search") or {}).get(VARIANT_AXIS) and not known:
        raise ConfigError(f"families.{name}.search.variant is set but the family defines no "
                          "variants", where=where)
    for variant in (section.get("search") or {}).get(VARIANT_AXIS, []):
        if variant not in known:
            raise ConfigError(f"families.{name}.search.variant names {variant!r}, not among "
                              f"families.{name}.variants{_suggest(variant, known)}", where=where)


def _check_data(section: Any, where: Path) -> None:
    _check_keys(section, DATA_KEYS, where, "data")
    _check_keys(section.get("tables", {}), TABLE_KEYS, where, "data.tables")
    _check_keys(section.get("images", {}), IMAGE_KEYS, where, "data.images")
    _check_classes(section, where)
    for part in ("tables", "images"):
        fraction = section.get(part, {}).get("test_fraction", 0.3)
        if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ConfigError(f"data.{part}.test_fraction must be between 0 and 1, "
                              f"got {fraction!r}", where=where)
    for key in ("synthetic_per_class", "judge_filter"):
        count = section.get("images", {}).get(key, 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ConfigError(f"data.images.{key} must be a whole number of at least 1, "
                              f"got {count!r}", where=where)
    val = section.get("tables", {}).get("val_fraction", 0.2)
    if not isinstance(val, (int, float)) or not 0 < val < 1:
        raise ConfigError(f"data.tables.val_fraction must be between 0 and 1, got {val!r}",
                          where=where)
    val = section.get("images", {}).get("val_fraction", 0.0)
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not 0 <= val < 1:
        raise ConfigError(f"data.images.val_fraction must be at least 0 and below 1 (the share "
                          f"of each class kept to score usefulness), got {val!r}", where=where)


def classes_wanted(data_cfg: dict, dataset: str) -> list[str]:
    """The class folders `data.images.classes` asks of one image dataset; [] means all of them.

    A mapping names the dataset each subset was written for (`{fids30: [apples, bananas]}`), so
    a preset's FIDS30 subset leaves any other dataset, such as a user's own `--image-data`
    folder, whole. A plain list (the older form) still applies to every image dataset. A value
    of the wrong shape is a ConfigError, so config validation calls this too."""
    value = (data_cfg.get("images") or {}).get("classes")
    path = "data.images.classes"
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not key:
                raise ConfigError(f"{path} maps dataset names to class lists; {key!r} is not a "
                                  "dataset name")
        value, path = value.get(dataset), f"{path}.{dataset}"
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(c, str) and c for c in value):
        raise ConfigError(f"{path} must be a list of class folder names (quote a name such as "
                          f"'0'), or a mapping {{dataset: [class, ...]}}; got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{path} names a class twice")
    return list(value)


def _check_classes(section: dict, where: Path) -> None:
    """data.images.classes: {dataset: [class folder, ...]} (each subset for the dataset it
    names) or a plain list (every image dataset), as `classes_wanted` reads it."""
    classes = section.get("images", {}).get("classes")
    for dataset in (classes if isinstance(classes, dict) else [""]):
        try:
            classes_wanted(section, dataset)
        except ConfigError as exc:
            raise ConfigError(exc.problem, where=where) from None


def _check_usefulness(name: str, section: dict, data: dict, where: Path) -> None:
    """A family that keeps its epoch by usefulness needs the val slice that scores it."""
    metric = str((section.get("select") or {}).get("metric", ""))
    if metric.split("/")[0] in ("useful", "useful_accuracy") \
            and not data.get("images", {}).get("val_fraction", 0.0):
        raise ConfigError(f"families.{name}.select.metric is {metric!r}, which the val slice "
                          "scores, but data.images.val_fraction is 0; set it above 0 (0.2 keeps "
                          "a fifth of each class) or select by kid", where=where)


def _check_evaluator(section: Any, where: Path) -> None:
    """Keys and values of the evaluator's classifier (EvaluatorConfig)."""
    fields = {f.name: f.default for f in dataclasses.fields(EvaluatorConfig)}
    _check_keys(section, fields, where, "evaluator")
    for key, value in section.items():
        if not _same_type(value, fields[key]):
            raise ConfigError(f"evaluator.{key} = {value!r} should be a "
                              f"{type(fields[key]).__name__}", where=where)
    try:
        EvaluatorConfig(**section)
    except ConfigError as exc:
        raise ConfigError(exc.problem, where=where) from None


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in REPLACED:
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(trials_dir: str | Path, preset: str) -> dict:
    """All family files merged, then the preset applied; returns {families, data, preset}."""
    trials_dir = Path(trials_dir)
    if not trials_dir.is_dir():
        raise ConfigError("no such folder (expected trials/*.yaml)", where=trials_dir)
    families: dict[str, dict] = {}
    kinds: dict[str, str] = {}
    origin: dict[str, Path] = {}
    data: dict = {}
    evaluator: dict = {}
    for path in sorted(trials_dir.glob("*.yaml")):
        content = _read_yaml(path)
        for name, section in (content.get("families") or {}).items():
            if name in families:
                raise ConfigError(f"family {name!r} is defined twice", where=path)
            kinds[name] = _check_family(name, section, None, path)
            families[name], origin[name] = section, path
        if "data" in content:
            _check_data(content["data"], path)
            data = _merge(data, content["data"])
        if "evaluator" in content:
            _check_evaluator(content["evaluator"], path)
            evaluator = _merge(evaluator, content["evaluator"])
    preset_path = trials_dir / "presets" / f"{preset}.yaml"
    if not preset_path.is_file():
        known = sorted(p.stem for p in (trials_dir / "presets").glob("*.yaml"))
        raise ConfigError(f"no preset {preset!r}; known presets: {', '.join(known) or 'none'}",
                          where=preset_path)
    overrides = _read_yaml(preset_path)
    for name, section in (overrides.get("families") or {}).items():
        if name not in families:
            raise ConfigError(f"preset names family {name!r}, which no trials/*.yaml defines"
                              f"{_suggest(name, families)}", where=preset_path)
        _check_family(name, section, kinds[name], preset_path)
        families[name] = _merge(families[name], section)
        if {"search", "variants", "scheduler", "samples"} & set(section):
            origin[name] = preset_path
    if "data" in overrides:
        _check_data(overrides["data"], preset_path)
        data = _merge(data, overrides["data"])
    if "evaluator" in overrides:
        _check_evaluator(overrides["evaluator"], preset_path)
        evaluator = _merge(evaluator, overrides["evaluator"])
    _check_data(data, preset_path)
    for name, section in families.items():
        _check_variant_names(name, section, origin[name])
        _check_scheduler(name, section, origin[name])
        _check_usefulness(name, section, data, origin[name])
    return {"families": families, "data": data, "evaluator": evaluator, "preset": preset}
