"""`run_farm.py sample`, `farm.open_experiment` and generator files against one small grown
experiment: both table families on diabetes and the conditional model on two fruit classes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import farm
from farm.data.tabular import load_table
from farm.pipeline.cli import main

REPO = Path(__file__).resolve().parents[2]
NAME = "grown"
PRESET = """
description: the smallest experiment to sample from
families:
  tabular-a:
    datasets: [diabetes]
    epochs: 2
    eval_every: 2
    search: {variant: [stable]}
    params: {metric_trees: 5}
  tabular-b:
    datasets: [diabetes]
    epochs: 2
    eval_every: 2
    search: {variant: [picked]}
    variants: {picked: {pick_best_of: 8}}
    params: {metric_trees: 5, eval_requests: 4, surrogate_warmup: 10}
  conditional:
    epochs: 1
    eval_every: 1
    search: {variant: [diffaug]}
    params: {g_width: 4, d_width: 8, z_dim: 16, batch_size: 16, ema_decay: 0.9, ema_start: 2,
             eval_images: 4, kid_subsets: 3, grid_images: 2}
data:
  images:
    classes: {fids30: [apples, bananas]}
    judge: {arch: tiny, epochs: 1}
    synthetic_per_class: 4
evaluator: {arch: tiny, epochs: 1, batch_size: 16, seeds: 1}
"""


@pytest.fixture(scope="module")
def grown(ray_local, shared_data, tmp_path_factory) -> Path:
    trials = Path(shutil.copytree(REPO / "trials", tmp_path_factory.mktemp("t") / "trials"))
    (trials / "presets" / "sample.yaml").write_text(PRESET)
    storage = tmp_path_factory.mktemp("storage")
    assert main(["--trials-dir", str(trials), "--preset", "sample", "--only",
                 "tabular-a,tabular-b,conditional", "--data-dir", str(shared_data),
                 "--storage-path", str(storage), "--name", NAME]) == 0
    return storage / NAME


def _summary(experiment: Path) -> dict:
    return json.loads((experiment / "summary.json").read_text())


def _sample(experiment: Path, *args: str) -> int:
    return main(["sample", "--name", experiment.name, "--storage-path", str(experiment.parent),
                 *args])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_trial_writes_the_runs_own_export_again(grown, tmp_path):
    """The experiment's CSVs and images, drawn again with the export's sample seed: the same
    CSV bytes, so the generator is the trial's kept epoch and the schema is the export's; the
    same images but for a level on the odd pixel (sampling runs channels-last)."""
    for trial in _summary(grown)["trials"]:
        seed = str(trial["seed"] + 7)  # farm.pipeline.export.sample_seed
        if trial["family"].startswith("tabular"):
            out = tmp_path / f"{trial['trial']}.csv"
            assert _sample(grown, "--trial", trial["trial"], "--rows",
                           str(trial["provenance"]["samples"]), "--seed", seed,
                           "--out", str(out)) == 0
            assert out.read_bytes() == Path(trial["synthetic_csv"]).read_bytes()
        else:
            out = tmp_path / trial["trial"]
            assert _sample(grown, "--family", "conditional", "--per-class", "4", "--seed", seed,
                           "--out", str(out)) == 0
            pngs = sorted(f for f in _files(out) if f.endswith(".png"))
            assert pngs == sorted(f for f in _files(Path(trial["synthetic_dir"]))
                                  if f.endswith(".png")) and len(pngs) == 8  # 2 classes x 4
            for png in pngs:
                mine, theirs = (np.asarray(Image.open(folder / png), dtype=int)
                                for folder in (out, Path(trial["synthetic_dir"])))
                assert np.abs(mine - theirs).max() <= 1 and (mine != theirs).mean() < 0.01


def test_rows_have_the_tables_exact_schema(grown, shared_data, tmp_path):
    real = load_table(shared_data / "diabetes" / "diabetes.arff")
    exp = farm.open_experiment(grown)
    assert set(exp.trials["family"]) == {"tabular-a", "tabular-b", "conditional"}
    extra = ["requested_confidence", "achieved_confidence"]
    for family, added in (("tabular-a", []), ("tabular-b", extra)):
        rows = exp.generator(family=family, dataset="diabetes").sample(300, seed=2)
        assert list(rows.columns) == list(real.frame.columns) + added
        assert dict(rows.dtypes[:len(real.columns)]) == dict(real.frame.dtypes)
        for column in real.columns:
            values = rows[column.name]
            if column.kind == "nominal":
                assert set(values) <= set(column.categories)
            else:
                assert values.between(real.frame[column.name].min(),
                                      real.frame[column.name].max()).all()
        out = tmp_path / f"{family}.csv"
        assert _sample(grown, "--family", family, "--rows", "300", "--seed", "2",
                       "--out", str(out)) == 0
        back = pd.read_csv(out, dtype={c.name: str for c in real.columns if c.kind == "nominal"})
        pd.testing.assert_frame_equal(back[list(real.frame.columns)].astype(real.frame.dtypes),
                                      rows[list(real.frame.columns)], check_exact=True)
        assert dict(back.dtypes[[c.name for c in real.columns if c.integer]]) == \
            {c.name: np.dtype("int64") for c in real.columns if c.integer}
    state = exp.generator(family="tabular-a").spec["data"]["transformer"]
    assert [b["name"] for b in state["blocks"]] == [c.name for c in real.columns]
    assert [(b["kind"], tuple(b["categories"]), b["integer"]) for b in state["blocks"]] == \
        [(c.kind, c.categories, c.integer) for c in real.columns]


SANDBOX = r"""
import json, os, sys
blocked = [os.path.realpath(p) for p in json.loads(sys.argv[1])]

def guard(event, args):  # the experiment and the data do not exist for this interpreter
    if event in ("open", "os.listdir", "os.scandir") and isinstance(args[0], (str, bytes)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if any(path == b or path.startswith(b + os.sep) for b in blocked):
            raise PermissionError(f"sandbox: {path}")

sys.addaudithook(guard)
import farm
assert "torch" not in sys.modules, "import farm loaded torch"
import numpy as np
for job in json.loads(sys.argv[2]):
    generator = farm.load_generator(job.pop("file"))
    out = job.pop("out")
    drawn = generator.sample(**job)
    if generator.modality == "table":
        drawn.to_pickle(out)
    else:
        np.savez(out, images=drawn[0], labels=drawn[1])
assert "ray" not in sys.modules, "sampling from a file loaded Ray"
"""


def test_a_saved_generator_samples_the_same_where_nothing_else_is(grown, shared_data, tmp_path):
    exp = farm.open_experiment(grown)
    requests = {"tabular-a": {"n": 60, "seed": 4},
                "tabular-b": {"n": 40, "seed": 5, "confidence": 0.7},
                "conditional": {"n": 3, "seed": 6, "classes": ["bananas"]}}
    expected, jobs = {}, []
    for family, request in requests.items():
        generator = exp.generator(family=family)
        expected[family] = generator.sample(**request)
        file = generator.save(tmp_path / "files" / f"{family}.gen")
        jobs.append({"file": str(file), "out": str(tmp_path / f"{family}.out"), **request})
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARM_DATA_DIR", "FARM_SHARED_DATA", "FARM_STORAGE")}
    env.update(PYTHONPATH=str(REPO), HOME=str(tmp_path), FARM_CACHE_DIR=str(tmp_path / "c"))
    blocked = [str(grown), str(shared_data), os.environ.get("FARM_CACHE_DIR", str(grown))]
    done = subprocess.run([sys.executable, "-c", SANDBOX, json.dumps(blocked), json.dumps(jobs)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    for family in ("tabular-a", "tabular-b"):
        pd.testing.assert_frame_equal(pd.read_pickle(tmp_path / f"{family}.out"),
                                      expected[family], check_exact=True)
    with np.load(tmp_path / "conditional.out.npz") as drawn:
        assert np.array_equal(drawn["images"], expected["conditional"][0])
        assert drawn["labels"].tolist() == ["bananas"] * 3


def test_the_same_command_writes_the_same_bytes_from_the_experiment_or_a_file(grown, tmp_path):
    exp = farm.open_experiment(grown)
    for family, request in (("tabular-b", ["--rows", "30", "--confidence", "0.4"]),
                            ("conditional", ["--per-class", "3", "--class", "apples"])):
        outs = [tmp_path / f"{family}-{i}{'.csv' if request[0] == '--rows' else ''}"
                for i in range(3)]
        for out in outs[:2]:
            assert _sample(grown, "--family", family, *request, "--seed", "9",
                           "--out", str(out)) == 0
        assert _sample(grown, "--family", family, *request, "--seed", "9", "--out",
                       str(outs[0]), "--force") == 0  # replaced by the same bytes
        file = exp.generator(family=family).save(tmp_path / f"{family}.gen")
        assert main(["sample", "--generator", str(file), *request, "--seed", "9",
                     "--out", str(outs[2])]) == 0
        if family == "tabular-b":
            made = [(o.read_bytes(), o.with_name(f"{o.stem}.manifest.json").read_text())
                    for o in outs]
            assert made[0] == made[1] and made[2][0] == made[0][0]
            manifest = json.loads(made[0][1])
            assert manifest["noise"] == [{"stream_seed": 9, "draws": [0, 240],
                                          "draws_per_row": 8}]
            assert manifest["checkpoint"].startswith("tune/tabular-b_diabetes_")
            assert manifest["epoch"] == 2 and manifest["confidence"] == 0.4
            assert json.loads(made[2][1])["generator_file"] == str(file)
        else:
            made = [_files(o) for o in outs]
            assert made[0] == made[1]
            assert {f: b for f, b in made[2].items() if f.endswith(".png")} == \
                {f: b for f, b in made[0].items() if f.endswith(".png")}
            assert sorted(made[0]) == ["apples/0000.png", "apples/0001.png", "apples/0002.png",
                                       "manifest.json"]
            manifest = json.loads(made[0]["manifest.json"])
            assert manifest["noise"] == [{"class": "apples", "stream_seed": 9,
                                          "draws": [0, 3]}]
            assert [f["index"] for f in manifest["files"]] == [0, 1, 2]


CSV, FOLDER = "out.csv", "out"
REFUSALS = {  # flags (after --name grown, unless they name another source), output, message
    "unknown experiment": (["--name", "nope", "--family", "tabular-a", "--rows", "5"], CSV,
                           "nope: no summary.json: not a finished experiment"),
    "unknown trial": (["--trial", "nope", "--rows", "5"], CSV, "no trial 'nope' in experiment"),
    "unknown family": (["--family", "tabular-z", "--rows", "5"], CSV,
                       "grew no family 'tabular-z'; it grew tabular-a, tabular-b, conditional"),
    "unknown dataset": (["--family", "tabular-a", "--dataset", "german_credit", "--rows", "5"],
                        CSV, "family 'tabular-a' grew on diabetes, not on 'german_credit'"),
    "unknown class": (["--family", "conditional", "--per-class", "2", "--class", "kiwis"],
                      FOLDER, "makes no class 'kiwis'; it makes apples, bananas"),
    "no rows": (["--family", "tabular-a", "--rows", "0"], CSV, "--rows must be at least 1, got 0"),
    "negative images": (["--family", "conditional", "--per-class", "-2"], FOLDER,
                        "--per-class must be at least 1, got -2"),
    "not a number": (["--family", "tabular-a", "--rows", "many"], CSV,
                     "argument --rows: invalid int value: 'many'"),
    "confidence above 1": (["--family", "tabular-b", "--rows", "5", "--confidence", "1.5"], CSV,
                           "--confidence must be in [0, 1], got 1.5"),
    "confidence below 0": (["--family", "tabular-b", "--rows", "5", "--confidence", "-0.1"],
                           CSV, "--confidence must be in [0, 1], got -0.1"),
    "confidence of part A": (["--family", "tabular-a", "--rows", "5", "--confidence", "0.5"],
                             CSV, "is tabular-a: confidence is asked of tabular-b only"),
    "rows of images": (["--family", "conditional", "--rows", "5"], CSV,
                       "makes images: ask with --per-class N [--class C], not --rows"),
    "images of a table": (["--family", "tabular-a", "--per-class", "5"], FOLDER,
                          "makes rows of table diabetes: ask with --rows N, not --per-class"),
    "existing output": (["--family", "tabular-a", "--rows", "5"], CSV,
                        "out.csv: exists; pass --force to replace it"),
    "foreign generator file": (["--generator", "foreign.gen", "--rows", "5"], CSV,
                               "foreign.gen: not a GAN Farm generator file"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_bad_requests_are_one_line_exit_2_and_write_nothing(case, grown, tmp_path, capsys):
    flags, out, message = REFUSALS[case]
    out = tmp_path / out
    if case == "existing output":
        out.write_text("keep me")
    (tmp_path / "foreign.gen").write_text("not a generator")
    flags = [str(tmp_path / f) if f.endswith(".gen") else f for f in flags]
    source = [] if {"--name", "--generator"} & set(flags) else ["--name", NAME]
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["sample", *source, "--storage-path", str(grown.parent), *flags,
                 "--out", str(out)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if case == "existing output":
        assert out.read_text() == "keep me"


def test_the_real_command_refuses_without_a_traceback(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "run_farm.py"), "sample", "--name", "nope",
                           "--storage-path", str(tmp_path), "--family", "tabular-a", "--rows",
                           "5", "--out", str(tmp_path / "x.csv")], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {tmp_path / 'nope'}: no summary.json: not a " \
                                  "finished experiment"
    assert list(tmp_path.iterdir()) == []


def test_it_samples_from_a_bucket_as_resume_reads_one(grown, s3, tmp_path, monkeypatch):
    """The experiment in S3 (moto), a machine with an empty local copy: the same bytes as from
    the folder, and only the files a sample needs come down."""
    import pyarrow.fs

    uri, env = s3
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.setenv("FARM_MIRROR", str(tmp_path / "mirror"))
    fs, root = pyarrow.fs.FileSystem.from_uri(uri.replace("?", "/in-bucket?"))
    pyarrow.fs.copy_files(str(grown), root, source_filesystem=pyarrow.fs.LocalFileSystem(),
                          destination_filesystem=fs)
    request = ["--family", "tabular-b", "--rows", "25", "--seed", "3"]
    assert _sample(grown, *request, "--out", str(tmp_path / "local.csv")) == 0
    assert main(["sample", "--name", "in-bucket", "--storage-path", uri, *request,
                 "--out", str(tmp_path / "bucket.csv")]) == 0
    assert (tmp_path / "bucket.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    manifest = json.loads((tmp_path / "bucket.manifest.json").read_text())
    assert manifest["experiment"].startswith("s3://farm-bucket/exps/in-bucket")
    images = farm.open_experiment(uri.replace("?", "/in-bucket?")).generator(
        family="conditional").sample(2, seed=1)
    assert np.array_equal(images[0], farm.open_experiment(grown).generator(
        family="conditional").sample(2, seed=1)[0])
    copied = {p.relative_to(tmp_path / "mirror").as_posix().split("/", 2)[-1]
              for p in (tmp_path / "mirror").rglob("*") if p.is_file()}
    assert {"summary.json", "run.json", "splits/diabetes.json"} <= copied
    assert not any(c.startswith(("synthetic/", "figures/", "judge/")) for c in copied), copied
    assert sum(c.endswith("/state.pt") for c in copied) == 2  # the two checkpoints drawn from
