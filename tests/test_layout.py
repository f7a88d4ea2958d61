"""The walls between farm/'s folders (docs/development.md, "Layout"), checked on the source and,
for the two paths that must start fast, in a fresh interpreter.

Every import counts, at module level or inside a function: a lazy import is still a
dependency, and a lazy `import torch` in the wrong place still loads torch. Each wall is a
function that lists violations in a {module: source} mapping, so that
`test_each_wall_fails_on_a_violation` can show it catching a planted one.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FARM = REPO / "farm"

# The folders bottom to top, each with the folders it may import (besides itself). A folder
# imports only from below it, so imports point down the pipeline and never back up.
LAYERS: dict[str, set[str]] = {
    "infra": set(),                                        # errors, atomic writes, storage
    "config": {"infra"},                                   # YAML, settings, the plan
    "reporting": {"infra"},                                # figures, curves, summary, report
    "models": {"infra", "config"},                         # networks, classifier, forest
    "gan": {"infra", "config", "models"},                  # the step loop and its helpers
    "metrics": {"infra", "config", "models"},              # metrics and the judge
    "data": {"infra", "config", "models", "metrics"},      # load, split, encode, prepare
    "families": {"infra", "config", "models", "gan", "metrics", "data", "reporting"},
    "tune": {"infra", "config", "gan", "families"},        # Ray Tune
    "evaluation": {"infra", "config", "models", "metrics", "data", "families", "reporting"},
    "sampling": {"infra", "config", "models", "data", "families"},  # no Ray, no Tune
    "pipeline": {"infra", "config", "reporting", "models", "gan", "metrics", "data",
                 "families", "tune", "evaluation", "sampling"},
}
# Ray itself (ray.init, the object store): the trials, the evaluator's job and the driver's
# cluster module. Ray Tune: tune/ only. Ray Train: the evaluator only, and the door to Ray's
# private APIs, since Tune's record of a checkpoint is Ray Train's private _TrainingResult.
RAY_USERS = ("farm.tune", "farm.evaluation.evaluator", "farm.pipeline.cluster")
RAY_TUNE_USERS = ("farm.tune",)
RAY_TRAIN_USERS = ("farm.evaluation.evaluator", "farm.tune.ray_internals")
# Checking a YAML file, writing a report and the plumbing under both never load these.
NO_TORCH = ("config", "reporting", "infra")
HEAVY = ("torch", "torchvision", "ray")
# Where the held-out test split may be read, and why (see test_only_final_scoring_...).
READS_TEST_SPLIT = {
    "farm.data.split": "makes the split and writes its manifest",
    "farm.data.prepare_tables": "the driver's table keeps its test rows for the final scoring "
                                "(PreparedTable.test_xy) and reports part B's black box on them "
                                "(the forest is fixed before any trial; nothing is chosen by it)",
    "farm.data.prepare_images": "the judge's accuracy on the test images: the ceiling the "
                                "trials' judge accuracy is read against, measured once; nothing "
                                "is chosen by it",
    "farm.evaluation.table_scores": "a table's final scores: TSTR, TRTR, real + synthetic, and "
                                    "the test rows as the holdout of the final DCR share",
    "farm.evaluation.evaluate_pools": "the image evaluator's test task",
}
TEST_SPLIT_NAMES = {"test", "test_xy", "test_frame", "test_enc"}


@dataclass(frozen=True)
class Import:
    name: str   # what is imported: a farm module, or an outside module or name (`ray.tune`)
    line: int
    top: bool   # runs when the module is imported (not inside a function)


def farm_sources() -> dict[str, str]:
    """{module name: source} of every module in farm/."""
    out = {}
    for path in sorted(FARM.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path.read_text()
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, source: str, modules) -> list[Import]:
    """Every import in `source`; `from a import b` is `a.b` when that is a farm module or the
    import is from outside the farm (`from ray import tune` is `ray.tune`), else `a`."""
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for branch in child.orelse:
                    visit(branch, top)
            elif isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in child.names:
                    full = f"{base}.{a.name}"
                    outside = base.split(".")[0] != "farm"
                    found.append(Import(full if outside or full in modules else base,
                                        child.lineno, top))
            else:
                visit(child, top)

    visit(ast.parse(source), True)
    return found


def _is_package(module: str, modules) -> bool:
    return any(m.startswith(module + ".") for m in modules)


def folder_of(module: str) -> str | None:
    """`farm.data.split` -> `data`; None for the root package `farm`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# --------------------------------------------------------------------------- the walls


def loose_modules(sources: dict[str, str]) -> list[str]:
    """Modules outside the layered folders (only the root package's __init__ may be)."""
    return [m for m in sources if m != "farm" and folder_of(m) not in LAYERS]


def upward_imports(sources: dict[str, str]) -> list[str]:
    """Imports from one folder into one it may not import (see LAYERS)."""
    bad = []
    for module, source in sources.items():
        mine = folder_of(module)
        for imp in imports_of(module, source, sources):
            if not _within(imp.name, ("farm",)) or imp.name == "farm":  # the root: __version__
                continue
            theirs = folder_of(imp.name)
            if mine is not None and theirs != mine and theirs not in LAYERS.get(mine, set()):
                bad.append(f"{module}:{imp.line} ({mine}) imports {imp.name} ({theirs})")
    return bad


def cycles(sources: dict[str, str]) -> list[list[str]]:
    """Import cycles among farm modules, through module-level imports (a package's __init__
    runs before any module in it, so importing a.b also imports a)."""
    graph: dict[str, set[str]] = {m: set() for m in sources}
    for module, source in sources.items():
        for imp in imports_of(module, source, sources):
            if imp.top and imp.name in sources:
                parts = imp.name.split(".")
                graph[module] |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    for module in graph:  # a module never "imports" its own package: Python runs it first
        graph[module].discard(module)
        graph[module] -= {p for p in graph[module] if module.startswith(p + ".")}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def strongly_connected(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongly_connected(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            strongly_connected(v)
    return found


def outside_imports(sources: dict[str, str], prefixes, allowed) -> list[str]:
    """Imports of `prefixes` (`ray.tune`, `torch`) by modules outside `allowed`."""
    return [f"{module}:{imp.line} imports {imp.name}"
            for module, source in sources.items() if not _within(module, allowed)
            for imp in imports_of(module, source, sources) if _within(imp.name, prefixes)]


def torch_in_light_folders(sources: dict[str, str]) -> list[str]:
    light = tuple(f"farm.{folder}" for folder in NO_TORCH)
    return [f"{module}:{imp.line} imports {imp.name}"
            for module, source in sources.items() if _within(module, light)
            for imp in imports_of(module, source, sources) if _within(imp.name, HEAVY)]


def reads_of_the_test_split(sources: dict[str, str]) -> list[str]:
    """`.test`, `.test_xy`, `.test_frame` or `.test_enc` read outside READS_TEST_SPLIT;
    `len(x.test)` is a count, not a read, and is allowed anywhere (the summary records the
    split's sizes)."""
    bad = []
    for module, source in sources.items():
        if module in READS_TEST_SPLIT:
            continue
        tree = ast.parse(source)
        counted = {id(call.args[0]) for call in ast.walk(tree)
                   if isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                   and call.func.id == "len" and len(call.args) == 1}
        bad += [f"{module}:{node.lineno} reads .{node.attr}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and node.attr in TEST_SPLIT_NAMES
                and id(node) not in counted]
    return bad


# --------------------------------------------------------------------------- on the tree


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return farm_sources()


def test_every_module_lives_in_a_layered_folder(sources):
    """farm/ holds folders, one job each, and no loose modules beside them."""
    assert loose_modules(sources) == []


def test_the_layers_form_a_stack():
    """Each folder may import only folders listed before it: the table itself has no cycle."""
    seen: set[str] = set()
    for folder, allowed in LAYERS.items():
        assert allowed <= seen, (folder, allowed - seen)
        assert (FARM / folder / "__init__.py").is_file(), folder
        seen.add(folder)


def test_imports_point_down_never_back_up(sources):
    """data, models, metrics and gan never import families, tune, evaluation, reporting,
    sampling or pipeline; config and infra import nothing above them; and so on (LAYERS)."""
    assert upward_imports(sources) == []


def test_no_import_cycles_among_farm_modules(sources):
    assert cycles(sources) == []


def test_building_blocks_import_no_ray(sources):
    """Ray at all (any `ray` import, `ray.init`, the object store) only in tune/, the
    evaluator's job and pipeline/cluster.py, where the farm's one `ray.init` lives. So data,
    models, metrics, gan, families, sampling (a generator file samples with torch alone),
    config, infra and reporting import no Ray."""
    assert outside_imports(sources, ("ray",), RAY_USERS) == []


def test_only_tune_knows_ray_tune(sources):
    assert outside_imports(sources, ("ray.tune",), RAY_TUNE_USERS) == []


def test_only_the_evaluator_knows_ray_train(sources):
    assert outside_imports(sources, ("ray.train",), RAY_TRAIN_USERS) == []


def test_config_reporting_and_infra_import_no_torch(sources):
    """Checking a YAML file and writing a report stay quick: not even a lazy torch import."""
    assert torch_in_light_folders(sources) == []


def test_only_final_scoring_reads_the_test_split(sources):
    """The held-out test split is read only where the farm scores on it once, at the end of
    each path, and where a score that chooses nothing is measured on it (READS_TEST_SPLIT,
    each with its reason). No family, game, metric, scheduler, the trainable or the choice
    of an epoch, a trial or a pool reads it: what trials get (farm/data/trial_data.py) holds
    the train rows and the val slice only. A read is an attribute `.test`, `.test_xy` or
    `.test_frame` (a Split's, a PreparedTable's); counting the rows with `len()` is not one."""
    assert reads_of_the_test_split(sources) == []


def test_each_wall_fails_on_a_violation(sources):
    """Every check above, fed the real tree with one violation planted, names it."""
    def planted(module: str, line: str) -> dict[str, str]:
        return {**sources, module: sources[module] + f"\n\ndef _planted():\n    {line}\n"}

    assert loose_modules({**sources, "farm.loose": ""}) == ["farm.loose"]
    assert upward_imports(planted("farm.data.split", "import farm.families.kinds"))
    assert upward_imports(planted("farm.metrics.images", "from farm.tune import trainable"))
    assert upward_imports(planted("farm.config.plan", "from farm.families.kinds import KINDS"))
    top = {**sources, "farm.infra.errors": sources["farm.infra.errors"]
           + "\nfrom farm.infra.storage import Store\n"}
    assert cycles(top) == [["farm.infra.errors", "farm.infra.storage"]]
    assert not cycles(planted("farm.infra.errors", "from farm.infra.storage import Store"))
    assert outside_imports(planted("farm.gan.ema", "import ray"), ("ray",), RAY_USERS)
    assert outside_imports(planted("farm.pipeline.experiment", "from ray import tune"),
                           ("ray.tune",), RAY_TUNE_USERS)
    assert outside_imports(planted("farm.tune.runner", "import ray.train"),
                           ("ray.train",), RAY_TRAIN_USERS)
    assert torch_in_light_folders(planted("farm.reporting.report", "import torch"))
    assert torch_in_light_folders(planted("farm.config.load", "from torch import nn"))
    assert reads_of_the_test_split(planted("farm.families.tabular_a", "return prepared.test_xy"))
    assert reads_of_the_test_split(planted("farm.tune.trainable", "return split.test[0]"))
    assert not reads_of_the_test_split(planted("farm.tune.trainable", "return len(split.test)"))


# --------------------------------------------------------------------------- for real


def _fresh(script: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_checking_every_preset_loads_no_torch_or_ray():
    """What `import farm.config` and a YAML check load, in an interpreter of its own: every
    module of config/, reporting/ and infra/, and every real preset loaded and planned."""
    script = f"""
import importlib, pkgutil, sys
sys.path.insert(0, {str(REPO)!r})
import farm, farm.config, farm.reporting, farm.infra
for package in (farm.config, farm.reporting, farm.infra):
    for m in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(m.name)
from pathlib import Path
from farm.config.load import load_config
from farm.config.plan import plan_trials
for preset in sorted(p.stem for p in Path("trials/presets").glob("*.yaml")):
    config = load_config("trials", preset)
    plan_trials(config["families"], 0, classes={{"fids30": ("apples", "bananas")}})
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    done = _fresh(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]"]


def test_report_only_loads_no_torch_or_ray(tmp_path):
    """`run_farm.py --report-only` of a finished experiment, in an interpreter of its own."""
    experiment = tmp_path / "e"
    experiment.mkdir()
    (experiment / "summary.json").write_text(json.dumps({
        "version": 2, "name": "e", "preset": "tiny", "created": "2024-05-01T10:00:00+00:00",
        "seed": 0, "experiment_dir": str(experiment), "seconds": 1.0, "datasets": {},
        "trials": []}))
    script = f"""
import runpy, sys
sys.path.insert(0, {str(REPO)!r})
sys.argv = ["run_farm.py", "--report-only", "--name", "e", "--storage-path", {str(tmp_path)!r}]
try:
    runpy.run_path({str(REPO / "run_farm.py")!r}, run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    done = _fresh(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (experiment / "report.html").is_file()
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_every_family_is_one_name_in_the_yaml_its_kind_and_its_module():
    """`fruit-pairs` is the family in trials/images.yaml, its `kind:` and
    farm/families/fruit_pairs.py; finished runs' former kind names still answer (ByKind)."""
    import yaml

    from farm.config.family_params import FORMER_KIND_NAMES, MODALITY, PARAMS

    for path in sorted((REPO / "trials").glob("*.yaml")):
        for name, section in (yaml.safe_load(path.read_text()).get("families") or {}).items():
            assert section["kind"] == name, (path.name, name)
            assert (FARM / "families" / f"{name.replace('-', '_')}.py").is_file(), name
    assert set(PARAMS) == set(MODALITY) == {"tabular-a", "tabular-b", "tabular-forest",
                                            "fruit-pairs", "spiked", "conditional"}
    for former, now in FORMER_KIND_NAMES.items():
        assert former in PARAMS and PARAMS[former] is PARAMS[now]
        assert MODALITY.get(former) == MODALITY[now]
