"""End to end: `run_farm.py` grows real (tiny) trials on an embedded Ray and writes its outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from farm.data.tabular import load_table
from farm.pipeline.cli import main
from tests.integration.conftest import pbt_preset

REPO = Path(__file__).resolve().parents[2]


def _tensorboard_tags(trial_dir: Path) -> set[str]:
    """Every scalar and image tag in a trial folder's TensorBoard event files."""
    tags = set()
    for events in trial_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["images"]) | set(accumulator.Tags()["scalars"])
    return tags


@pytest.fixture(scope="module")
def tiny_run(ray_local, shared_data, tmp_path_factory):
    storage = tmp_path_factory.mktemp("storage")
    code = main(["--preset", "tiny", "--data-dir", str(shared_data), "--storage-path",
                 str(storage), "--name", "e2e"])
    return code, storage / "e2e"


def test_tiny_farm_writes_summary_checkpoints_and_csvs(tiny_run, shared_data):
    code, experiment = tiny_run
    assert code == 0
    summary = json.loads((experiment / "summary.json").read_text())
    tables = [t for t in summary["trials"] if t["family"].startswith("tabular")]
    assert {(t["family"], t["dataset"]) for t in tables} == {
        (f, d) for f in ("tabular-a", "tabular-b", "tabular-forest")
        for d in ("german_credit", "diabetes")}
    for trial in tables:
        assert trial["status"] == "ok"
        evaluated = (1, 2) if trial["family"] == "tabular-forest" else (2, 4)
        assert isinstance(trial["best_epoch"], int) and trial["best_epoch"] in evaluated
        assert 0.0 <= trial["metrics"]["detection_auc"] <= 1.0
        assert trial["select_metric"] in trial["metrics"] and "dcr/median" in trial["metrics"]
        state = torch.load(Path(trial["checkpoint"]) / "state.pt", weights_only=True)
        assert state["epoch"] == trial["best_epoch"]
        real = load_table(shared_data / trial["dataset"] / f"{trial['dataset']}.arff")
        synthetic = pd.read_csv(trial["synthetic_csv"])
        extra = (["requested_confidence", "achieved_confidence"]
                 if trial["family"] == "tabular-b" else [])
        assert list(synthetic.columns) == list(real.frame.columns) + extra
        for column in extra:
            assert synthetic[column].between(0, 1).all()
        for name, png in trial["figures"].items():
            with Image.open(png) as image:  # every picture decodes
                image.load()
                assert image.size[0] > 100, name
        assert len(synthetic) == summary["datasets"][trial["dataset"]]["split"]["fit"] + \
            summary["datasets"][trial["dataset"]]["split"]["val"]
        for col in real.columns:
            if col.kind == "nominal":
                assert set(synthetic[col.name].astype(str)) <= set(col.categories)
            else:
                assert synthetic[col.name].between(real.frame[col.name].min(),
                                                   real.frame[col.name].max()).all()
                if col.integer:
                    assert pd.api.types.is_integer_dtype(synthetic[col.name])
        assert 0.0 <= trial["tstr"]["auc"] <= 1.0
        for key in ("column_shapes", "column_pair_trends", "detection_xgb", "dcr_share"):
            assert 0.0 <= trial["field"][key] <= 1.0, key
        assert 0.0 <= trial["metrics"]["dcr_share"] <= 1.0  # every evaluation, val as holdout
    for info in (summary["datasets"][d] for d in ("german_credit", "diabetes")):
        assert info["trtr"]["auc"] > 0.7  # the real-data ceiling is a real forest's score
        smote = info["smote"]  # the interpolation baseline, scored as the trials are
        assert smote["tstr"]["auc"] > 0.6 and 0.0 <= smote["field"]["dcr_share"] <= 1.0
        assert info["black_box"]["test_auc"] > 0.7
        assert set(info["black_box"]["figures"]) == {"roc", "confidences"}
        assert Path(info["split"]["manifest"]).is_file()
    assert list((experiment / "tune").glob("tabular-a_*/events.out.tfevents.*"))
    tags = _tensorboard_tags(next((experiment / "tune").glob("tabular-b_german*")))
    assert {"confidence_link", "confidence_by_class", "chosen_epoch/tsne",
            "ray/tune/confidence/error", "ray/tune/loss/d"} <= tags


def test_every_trial_keeps_its_own_training_pictures(tiny_run):
    """One experiment reuses a trial's process for the next trial: the pictures each trial
    draws while it trains must still land in that trial's own folder."""
    _, experiment = tiny_run
    trial_dirs = sorted(d for d in (experiment / "tune").glob("*_*") if d.is_dir())
    assert len(trial_dirs) == 10
    for trial_dir in trial_dirs:
        if trial_dir.name.startswith(("tabular-a_", "tabular-forest_")):
            continue  # part A and the forest draw their pictures at the chosen epoch only
        during = {t for t in _tensorboard_tags(trial_dir)
                  if not t.startswith(("ray/", "chosen_epoch/"))}
        assert during, f"{trial_dir.name} lost its training pictures"


def test_tiny_farm_grows_image_pairs_spiked_and_conditional_models(tiny_run):
    _, experiment = tiny_run
    summary = json.loads((experiment / "summary.json").read_text())
    images = [t for t in summary["trials"] if t["dataset"] == "fids30"]
    assert sorted((t["family"], t["class"] or "") for t in images) == [
        ("conditional", ""), ("fruit-pairs", "apples"), ("fruit-pairs", "bananas"), ("spiked", "")]
    judge = summary["datasets"]["fids30"]["judge"]
    assert 0.0 <= judge["test_accuracy"] <= 1.0 and judge["chance"] == 0.5
    state = torch.load(judge["checkpoint"], weights_only=True)
    assert state["classes"] == ["apples", "bananas"]
    for trial in images:
        assert trial["status"] == "ok" and isinstance(trial["best_epoch"], int)
        assert trial["select_metric"] in trial["metrics"]
        folder = Path(trial["synthetic_dir"])
        expected = [trial["class"]] if trial["class"] else ["apples", "bananas"]
        assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == expected
        for png in folder.rglob("*.png"):
            with Image.open(png) as image:
                assert image.size == (64, 64) and image.mode == "RGB"
        assert len(list(folder.rglob("*.png"))) == 4 * len(expected)
        manifest = json.loads((folder / "manifest.json").read_text())["files"]
        for name in expected:  # the tiny preset's judge filter keeps 4 of 8 draws per class
            kept = [f["index"] for f in manifest if f["class"] == name]
            assert len(set(kept)) == 4 and all(0 <= i < 8 for i in kept)
        assert all(f["samples"] == 8 and "judge finds" in f["kept"] for f in manifest)
    for trial in images:  # kept by usefulness on the val slice, KID beside it
        assert trial["select_metric"] == "useful"
        assert {"useful", "useful_accuracy", "diversity" if trial["class"] else
                "diversity/mean"} <= set(trial["metrics"])
    for family in ("spiked", "conditional"):
        trial = next(t for t in images if t["family"] == family)
        assert {"kid/apples", "kid/bananas", "kid/mean", "judge_accuracy/mean"} <= set(
            trial["metrics"])
    conditional = next(t for t in images if t["family"] == "conditional")
    state = torch.load(Path(conditional["checkpoint"]) / "state.pt", weights_only=True)
    assert {"steps", "raw.linear.weight", "ema.linear.weight"} <= set(state["generator"])
    assert conditional["params"]["diffaug"] == "color,translation,cutout"
    tags = _tensorboard_tags(
        next((experiment / "tune").glob("fruit-pairs_fids30_apples_*")))
    assert {"samples", "ray/tune/kid", "ray/tune/judge_accuracy", "ray/tune/loss/g",
            "ray/tune/useful"} <= tags
    split = json.loads((experiment / "splits" / "fids30.json").read_text())
    assert not set(split["fit"]) & set(split["test"]) and len(split["test"]) > 0
    # the tiny preset's pairs begin from one shared start, grown once before the trials
    starts = list((experiment / "starts").glob("*.pt"))
    assert [p.name.rsplit("-", 1)[0] for p in starts] == ["fruit-pairs_fids30_variant_report"]
    start = torch.load(starts[0], weights_only=True)
    assert set(start) == {"generator", "discriminator", "samples"}
    assert "shared starts" in summary["phases"]
    # what the start draws: a picture beside it, in the report's figures and in TensorBoard
    picture = summary["figures"]["shared start/fruit-pairs|fids30|variant=report"]
    assert Path(picture) == starts[0].with_suffix(".png") and Path(picture).exists()
    assert "shared start/fruit-pairs|fids30|variant=report" in _tensorboard_tags(
        experiment / "tensorboard-curves")


def _decoded_images(html: str) -> list:
    import base64
    import io
    import re

    sources = re.findall(r'<img[^>]*src="([^"]*)"', html)
    images = []
    for src in sources:
        assert src.startswith("data:image/png;base64,"), src[:60]
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.load()
            images.append(image.size)
    return images


def test_evaluator_pools_and_scores_images_on_the_held_out_split(tiny_run):
    _, experiment = tiny_run
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["version"] == 2
    phases = summary["phases"]  # where the run's time went, in the order it went there
    assert list(phases)[:5] == ["prepare", "judge", "shared starts", "ray start", "trials"]
    assert {"export", "curves", "evaluator"} <= set(phases) and phases["evaluator"] > 0
    assert sum(phases.values()) <= summary["seconds"] + 1
    use = summary["phase_use"]  # how much of the trials and the evaluator was the work itself
    assert 0 < use["trials"]["busy"] <= 1 and use["trials"]["cores"] == 2
    assert 0 < use["evaluator"]["busy"] <= 1
    assert use["evaluator"]["work_seconds"] == summary["evaluator"]["datasets"]["fids30"][
        "classifier_seconds"]
    section = summary["evaluator"]
    assert section["config"]["arch"] == "tiny" and section["workers"] >= 1
    fids = section["datasets"]["fids30"]
    split = json.loads((experiment / "splits" / "fids30.json").read_text())
    assert fids["classes"] == ["apples", "bananas"] and fids["chance"] == 0.5
    assert fids["test_images"] == len(split["test"])
    train = len(split["fit"]) + len(split["val"])  # the val slice rejoins after selection
    assert split["val"] and not set(split["val"]) & set(split["fit"])
    assert fids["ceiling"]["train_images"] == train
    trained = {n: p for n, p in fids["pools"].items() if "same_as" not in p}
    biggest = max(p["images"] for p in trained.values())
    assert fids["control"]["train_images"] == train + biggest
    # every classifier of real images the same steps; CAS (the pool alone) its own cas_epochs
    assert {p["real_plus_synthetic"]["steps"] for p in trained.values()} == {
        fids["ceiling"]["steps"]} == {fids["control"]["steps"]}
    assert {p["cas"]["steps"] for p in trained.values()} == {fids["ceiling"]["steps"] // 2}
    assert {"fruit-pairs", "spiked"} <= set(trained) and fids["best_pool"] in trained
    for name, pool in trained.items():
        for result in (pool["cas"], pool["real_plus_synthetic"]):
            assert 0.0 <= result["accuracy"] <= 1.0
            seeds = section["config"]["seeds"]
            assert sum(map(sum, result["confusion"])) == seeds * fids["test_images"]
            assert len(result["accuracies"]) == seeds
            with Image.open(result["figure"]) as image:
                image.load()
        assert pool["cas"]["train_images"] == pool["images"] == 8  # 4 per class
        assert pool["real_plus_synthetic"]["train_images"] == pool["images"] + train
        assert pool["augmentation_gain"] == pytest.approx(
            pool["real_plus_synthetic"]["accuracy"] - fids["ceiling"]["accuracy"])
        assert pool["gain"]["ci"] is not None and pool["verdict"].split(":")[0] in (
            "helps", "does not help")
        manifest = json.loads(Path(pool["manifest"]).read_text())
        assert len(manifest["files"]) == pool["images"]
        trials = {t["trial"]: t for t in summary["trials"]}
        for record in manifest["files"]:
            assert (Path(pool["dir"]) / record["file"]).is_file()
            made_by = trials[record["trial"]]
            assert record["checkpoint"] == made_by["checkpoint"]
            assert record["epoch"] == made_by["best_epoch"] and record["seed"] == made_by["seed"]
            assert name in made_by["pools"]
    # best-per-class takes, for each class, the trial whose images were most useful for it
    best = fids["pools"]["best-per-class"]["members"]
    for cls, [trial] in best.items():
        candidates = [t for t in summary["trials"] if t["dataset"] == "fids30"
                      and (t["class"] == cls or t["class"] is None)]
        useful = {t["trial"]: (t["metrics"].get("useful") if t["class"] is not None
                               else t["metrics"].get(f"useful/{cls}")) for t in candidates}
        assert useful[trial] == max(useful.values())
    # the best pool: its choice classifier's val accuracy (pools within 0.01 tie, KID breaks it)
    assert len(trained) > 1 and all(0 <= p["choice_accuracy"] <= 1 for p in trained.values())
    top = max(p["choice_accuracy"] for p in trained.values())
    tied = [n for n, p in trained.items() if p["choice_accuracy"] >= top - 0.01]
    assert fids["best_pool"] == min(tied, key=lambda n: trained[n]["mean_kid"])
    assert fids["best_pool_rule"].startswith("the highest val-slice accuracy of a classifier")
    assert (experiment / "evaluator" / "evaluator-fids30-choice").is_dir()
    assert "extra" in fids["protocol"]
    events = list((experiment / "evaluator").glob("tensorboard-fids30/events.out.tfevents.*"))
    assert events and "evaluator/accuracy/real" in _tensorboard_tags(events[0].parent)


def test_tables_get_real_plus_synthetic_a_chosen_trial_and_a_manifest(tiny_run):
    _, experiment = tiny_run
    summary = json.loads((experiment / "summary.json").read_text())
    tables = [t for t in summary["trials"] if t["family"].startswith("tabular")]
    for trial in tables:
        assert 0.0 <= trial["real_plus_synthetic"]["auc"] <= 1.0
        assert trial["chosen"] is True  # one trial per family and dataset in the tiny preset
    for dataset in ("german_credit", "diabetes"):  # the farm's pick among kinds by select/score
        rivals = [t for t in tables if t["dataset"] == dataset and t["family"] != "tabular-b"]
        best = max(rivals, key=lambda t: t["metrics"]["select/score"])
        assert [t["trial"] for t in tables if t["dataset"] == dataset and t["pick"]] == [
            best["trial"]]
    manifest = json.loads(
        (experiment / "synthetic" / "german_credit" / "manifest.json").read_text())
    assert sorted(f["file"] for f in manifest["files"]) == sorted(
        Path(t["synthetic_csv"]).name for t in tables if t["dataset"] == "german_credit")
    assert all(f["checkpoint"] and f["epoch"] for f in manifest["files"])
    for name in ("curves/tabular-a", "curves/fruit-pairs", "curves/spiked", "curves/conditional"):
        assert Path(summary["figures"][name]).is_file()


def test_report_embeds_every_picture_and_can_be_rewritten(tiny_run, capsys):
    _, experiment = tiny_run
    html = (experiment / "report.html").read_text()
    sizes = _decoded_images(html)
    assert len(sizes) >= 20 and all(w > 50 and h > 50 for w, h in sizes)
    assert "missing:" not in html and "http://" not in html and "https://" not in html
    assert "fruit-pairs" in html and "best-per-class" in html
    assert (experiment / "report.md").read_text().startswith("# ")
    (experiment / "report.html").unlink()
    (experiment / "report.md").unlink()
    code = main(["--report-only", "--name", experiment.name,
                 "--storage-path", str(experiment.parent)])
    assert code == 0 and "report.html" in capsys.readouterr().out
    assert len(_decoded_images((experiment / "report.html").read_text())) == len(sizes)


def test_report_only_on_an_unknown_experiment_is_one_clear_line(tmp_path):
    done = _run_cli("--report-only", "--name", "nope", "--storage-path", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "summary.json" in done.stderr and "not a finished experiment" in done.stderr
    assert not (tmp_path / "nope").exists()


ASHA_PRESET = """
description: sampled learning rates, stopped early by ASHA on a smoothed metric
families:
  tabular-a:
    epochs: 8
    eval_every: 2
    samples: 4
    search:
      variant: [stable]
      lr_g: {loguniform: [1.0e-6, 1.0e-2]}
    scheduler: {kind: asha, grace_period: 2, reduction_factor: 2, smoothing: 2}
    params: {metric_trees: 10}
"""


def _tabular_a_on_diabetes(preset: str, text: str, data: Path, tmp_path: Path) -> dict:
    """Run tabular-a alone on diabetes under a preset written here; its summary."""
    trials = Path(shutil.copytree(REPO / "trials", tmp_path / "trials"))
    (trials / "presets" / f"{preset}.yaml").write_text(text)
    code = main(["--trials-dir", str(trials), "--preset", preset, "--only", "tabular-a",
                 "--tabular-data", str(data / "diabetes" / "diabetes.arff"),
                 "--storage-path", str(tmp_path / "out"), "--name", preset])
    assert code == 0
    return json.loads((tmp_path / "out" / preset / "summary.json").read_text())


def test_sampled_search_with_asha_keeps_each_trials_best_raw_epoch(ray_local, shared_data,
                                                                     tmp_path):
    summary = _tabular_a_on_diabetes("asha", ASHA_PRESET, shared_data, tmp_path)
    assert len(summary["trials"]) == 4
    assert len({t["params"]["lr_g"] for t in summary["trials"]}) == 4
    for trial in summary["trials"]:
        progress = pd.read_csv(Path(trial["trial_dir"]) / "progress.csv")
        assert "select/smoothed" in progress  # what ASHA read
        assert trial["last_epoch"] == progress["epoch"].max() <= 8
        best = progress.loc[progress["select/score"].idxmax()]
        assert trial["best_epoch"] == best["epoch"]  # the raw metric, not the smoothed one


PBT_PRESET = pbt_preset(epochs=10, interval=2)


def test_pbt_moves_weights_between_trials_that_keep_their_names(ray_local, shared_data,
                                                                 tmp_path):
    summary = _tabular_a_on_diabetes("pbt", PBT_PRESET, shared_data, tmp_path)
    assert [t["status"] for t in summary["trials"]] == ["ok"] * 4
    assert len({t["trial"] for t in summary["trials"]}) == 4  # an exploit keeps the trial's name
    assert len({Path(t["synthetic_csv"]).name for t in summary["trials"]}) == 4
    exploited = [t for t in summary["trials"] if t.get("exploits")]
    assert exploited, "10 epochs with a perturbation every 2 and half the population below"
    names = {t["trial"] for t in summary["trials"]}
    for trial in exploited:
        last = trial["exploits"][-1]
        assert f"tabular-a_diabetes_{last['donor']:03d}" in names - {trial["trial"]}
        assert trial["params"]["lr_g"] == last["params"]["lr_g"]  # the perturbed rate it ran on
        donor = torch.load(Path(trial["trial_dir"]) / "pbt_donor" / "state.pt",
                           weights_only=True)
        assert donor["epoch"] == last["epoch"]  # the donor's weights at the exploit, kept here
        progress = pd.read_csv(Path(trial["trial_dir"]) / "progress.csv")
        assert progress["epoch"].tolist()[-1] == 10  # it trained on from the donor's epoch
    for trial in summary["trials"]:
        # every report's checkpoint was saved, the one that led to an exploit too: the kept
        # epoch is the trial's best raw-metric report (Ray's own PBT can drop that one)
        progress = pd.read_csv(Path(trial["trial_dir"]) / "progress.csv")
        best = progress.loc[progress["select/score"].idxmax()]
        assert trial["metrics"]["select/score"] == pytest.approx(best["select/score"])


def test_split_is_written_and_test_rows_never_reach_trials(tiny_run):
    _, experiment = tiny_run
    split = json.loads((experiment / "splits" / "german_credit.json").read_text())
    fit, val, test = set(split["fit"]), set(split["val"]), set(split["test"])
    assert not (fit & test) and not (val & test) and not (fit & val)
    assert len(fit | val | test) == 1000 and len(test) == 300


def test_users_own_csv_with_named_target(ray_local, shared_data, tmp_path):
    frame = load_table(shared_data / "diabetes" / "diabetes.arff").frame
    frame = frame[["class", *[c for c in frame.columns if c != "class"]]]  # target not last
    csv = tmp_path / "my data.csv"
    frame.to_csv(csv, index=False)
    code = main(["--preset", "tiny", "--only", "tabular-a,tabular-b",
                 "--tabular-data", str(csv), "--target", "class",
                 "--storage-path", str(tmp_path / "out"), "--name", "own"])
    assert code == 0
    summary = json.loads((tmp_path / "out" / "own" / "summary.json").read_text())
    assert [t["dataset"] for t in summary["trials"]] == ["my_data", "my_data"]
    synthetic = pd.read_csv(summary["trials"][0]["synthetic_csv"])
    assert list(synthetic.columns) == list(frame.columns)


def test_part_b_refuses_a_multiclass_target_clearly(tmp_path, shared_data):
    frame = load_table(shared_data / "diabetes" / "diabetes.arff").frame
    frame["band"] = pd.cut(frame["age"], [0, 30, 45, 200], labels=["young", "mid", "old"])
    csv = tmp_path / "bands.csv"
    frame.to_csv(csv, index=False)
    done = _run_cli("--preset", "tiny", "--only", "tabular-b", "--tabular-data", str(csv),
                    "--target", "band", "--storage-path", str(tmp_path / "out"), "--name", "x")
    assert done.returncode == 2
    assert "bands.csv: part B (tabular-b) steers a binary classifier" in done.stderr
    assert "has 3 classes" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "x").exists()


def _run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, str(REPO / "run_farm.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _bad_trials_dir(tmp_path: Path) -> Path:
    trials = tmp_path / "trials"
    shutil.copytree(REPO / "trials", trials)
    text = (trials / "tabular.yaml").read_text().replace("lr_g: 1.0e-4", "lr_gg: 1.0e-4")
    (trials / "tabular.yaml").write_text(text)
    return trials


@pytest.mark.parametrize("case", ["missing_file", "unknown_target", "unknown_family",
                                  "bad_yaml_key", "text_in_numeric", "bad_arff", "bad_address",
                                  "corrupt_jpeg", "empty_class", "too_few_images"])
def test_bad_input_is_one_line_nonzero_and_writes_nothing(case, tmp_path, shared_data):
    storage = tmp_path / "out"
    common = ["--storage-path", str(storage), "--name", "bad", "--preset", "tiny"]
    tables_only = ["--only", "tabular-a"]
    csv = tmp_path / "table.csv"
    load_table(shared_data / "diabetes" / "diabetes.arff").frame.to_csv(csv, index=False)
    if case == "missing_file":
        args = [*tables_only, "--tabular-data", str(tmp_path / "nope.csv")]
        expect = "nope.csv: no such file"
    elif case == "unknown_target":
        args = [*tables_only, "--tabular-data", str(csv), "--target", "klass"]
        expect = "no column named 'klass'"
    elif case == "unknown_family":
        args, expect = ["--only", "tabular-z"], "unknown family 'tabular-z'"
    elif case == "bad_yaml_key":
        args, expect = ["--trials-dir", str(_bad_trials_dir(tmp_path))], "did you mean 'lr_g'"
    elif case in ("corrupt_jpeg", "empty_class", "too_few_images"):
        folder = tmp_path / "photos"
        for fruit in ("apples", "bananas"):
            (folder / fruit).mkdir(parents=True)
            for src in sorted((shared_data / "fids30" / fruit).glob("*.jpg"))[:4]:
                shutil.copy(src, folder / fruit / src.name)
        if case == "corrupt_jpeg":
            victim = sorted((folder / "bananas").glob("*.jpg"))[0]
            victim.write_bytes(victim.read_bytes()[:300])
            expect = f"{victim}: cannot decode image"
        elif case == "empty_class":
            (folder / "cherries").mkdir()
            expect = "cherries: empty class folder"
        else:
            for extra in sorted((folder / "bananas").glob("*.jpg"))[2:]:
                extra.unlink()
            expect = "bananas: class has 2 image(s)"
        args = ["--image-data", str(folder), "--only", "fruit-pairs"]
    elif case == "bad_address":
        args = [*tables_only, "--address", "127.0.0.1:1"]
        expect = "--address 127.0.0.1:1: no Ray head answers"
    elif case == "text_in_numeric":
        lines = csv.read_text().splitlines()
        lines[5] = "abc," + lines[5].split(",", 1)[1]
        csv.write_text("\n".join(lines) + "\n")
        args = [*tables_only, "--tabular-data", str(csv)]
        expect = "column 'preg' is numeric but data row 5"
    else:
        arff = tmp_path / "broken.arff"
        text = (shared_data / "diabetes" / "diabetes.arff").read_text()
        arff.write_text(text.replace("@attribute 'plas' numeric", "@attribute 'plas' nonsense"))
        args, expect = [*tables_only, "--tabular-data", str(arff)], "broken.arff: ARFF syntax error"
    done = _run_cli(*common, *args)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    # Progress lines (decoding, downloads) may come first; the problem is one last line.
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert expect in errors[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (storage / "bad").exists()


def test_dry_run_lists_trials_and_trains_nothing(tmp_path, shared_data):
    done = _run_cli("--preset", "smoke", "--dry-run", "--storage-path", str(tmp_path),
                    "--data-dir", str(shared_data))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("tabular-a ") == 4 and done.stdout.count("tabular-b ") == 4
    assert done.stdout.count("fruit-pairs ") == 3 and done.stdout.count("spiked ") == 2
    assert done.stdout.count("conditional ") == 1
    assert "Nothing was trained" in done.stdout
    assert not any(tmp_path.iterdir())
