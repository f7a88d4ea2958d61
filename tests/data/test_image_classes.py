"""`data.images.classes`: a class subset applies to the dataset it names, and is checked against
the folder scan before any image is decoded.

The bug these guard: the default `smoke` preset's FIDS30 subset (apples, bananas, kiwifruit)
was applied to a user's own `--image-data DIR`, so the dry run planned fruit trials on a folder
of digits and the real run stopped, after decoding every image, on "names 'apples'".
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import farm.data.images
import farm.data.prepare_images
from farm.config.family_params import MODALITY
from farm.config.load import classes_wanted, load_config
from farm.config.plan import plan_trials
from farm.data.prepare_images import chosen_classes, prepare_images
from farm.infra.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
TRIALS = REPO / "trials"
FIXTURE = REPO / "tests" / "fixtures" / "trials"
PRESETS = sorted(p.stem for p in (TRIALS / "presets").glob("*.yaml"))
DIGITS = ("0", "1", "2")


def digit_folder(parent: Path, per_class: int = 6) -> Path:
    """A user's own ImageFolder: `digits/<0|1|2>/*.png`, small random pictures."""
    root = parent / "digits"
    rng = np.random.default_rng(0)
    for name in DIGITS:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def image_families(config: dict) -> list[str]:
    return [name for name, section in config["families"].items()
            if MODALITY[section["kind"]] == "image"]


@pytest.fixture
def no_decoding(monkeypatch):
    """Any decoding of an image fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(farm.data.prepare_images, "load_image_folder", refuse)
    monkeypatch.setattr(farm.data.images, "load_image_folder", refuse)
    monkeypatch.setattr(farm.data.images, "_decode_all", refuse)
    monkeypatch.setattr(farm.data.images, "decode_image", refuse)


# ---------------------------------------------------------------- the one reader of the setting


@pytest.mark.parametrize("classes, dataset, expected", [
    ({"fids30": ["apples", "bananas"]}, "fids30", ["apples", "bananas"]),   # the dataset it names
    ({"fids30": ["apples", "bananas"]}, "digits", []),                      # any other: all
    ({"fids30": ["apples"], "digits": ["0"]}, "digits", ["0"]),
    ({"fids30": []}, "fids30", []),
    ({"fids30": None}, "fids30", []),
    ({}, "fids30", []),
    (["apples", "bananas"], "fids30", ["apples", "bananas"]),   # a plain list: every dataset
    (["apples", "bananas"], "digits", ["apples", "bananas"]),
    ([], "digits", []),
    (None, "digits", []),
])
def test_classes_wanted(classes, dataset, expected):
    assert classes_wanted({"images": {"classes": classes}}, dataset) == expected


def test_classes_wanted_without_the_setting():
    assert classes_wanted({}, "fids30") == []
    assert classes_wanted({"images": {}}, "fids30") == []


@pytest.mark.parametrize("classes", ["apples", {"fids30": "apples"}, [0, 1], {"fids30": [0]},
                                     ["apples", "apples"], {1: ["a"]}, [""]])
def test_classes_wanted_rejects_a_wrong_shape(classes):
    with pytest.raises(ConfigError, match="data.images.classes"):
        classes_wanted({"images": {"classes": classes}}, "fids30")


def test_chosen_classes_checks_against_the_scan(tmp_path):
    found = ("apples", "bananas", "kiwifruit", "limes")
    data = {"images": {"classes": {"fids30": ["kiwifruit", "apples"]}}}
    assert chosen_classes(data, "fids30", found, tmp_path) == ("kiwifruit", "apples")
    assert chosen_classes(data, "digits", DIGITS, tmp_path) == DIGITS
    with pytest.raises(ConfigError) as caught:
        chosen_classes(data, "fids30", DIGITS, tmp_path / "digits")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'digits'}: ") and "'kiwifruit'" in message
    assert "\n" not in message


@pytest.mark.parametrize("yaml_value, problem", [
    ("apples", "must be a list"),
    ("{fids30: apples}", "data.images.classes.fids30 must be a list"),
    ("{digits: [0, 1]}", "quote a name"),
    ("[apples, apples]", "names a class twice"),
])
def test_config_rejects_a_wrong_shape(tmp_path, yaml_value, problem):
    trials = Path(shutil.copytree(FIXTURE, tmp_path / "trials"))
    preset = trials / "presets" / "smoke.yaml"
    preset.write_text(preset.read_text() + f"data:\n  images:\n    classes: {yaml_value}\n")
    with pytest.raises(ConfigError, match=problem) as caught:
        load_config(trials, "smoke")
    assert caught.value.where == str(preset)


def test_config_accepts_both_forms(tmp_path):
    trials = Path(shutil.copytree(FIXTURE, tmp_path / "trials"))
    preset = trials / "presets" / "smoke.yaml"
    text = preset.read_text()
    preset.write_text(text + "data:\n  images:\n    classes: {fids30: [apples], digits: ['0']}\n")
    assert classes_wanted(load_config(trials, "smoke")["data"], "digits") == ["0"]
    preset.write_text(text + "data:\n  images:\n    classes: [apples]\n")
    assert classes_wanted(load_config(trials, "smoke")["data"], "digits") == ["apples"]


def test_real_presets_name_the_dataset_of_every_subset():
    """The farm's presets write subsets for FIDS30, so they never reach a user's folder."""
    for preset in PRESETS:
        classes = load_config(TRIALS, preset)["data"].get("images", {}).get("classes") or {}
        assert isinstance(classes, dict), preset
        assert classes_wanted(load_config(TRIALS, preset)["data"], "digits") == [], preset


# ---------------------------------------------------------------- --image-data under every preset


@pytest.mark.parametrize("preset", PRESETS)
def test_image_data_under_every_preset(preset, tmp_path, capsys, no_decoding):
    """`run_farm.py --preset P --image-data DIR --only <image families> --dry-run` plans the
    user's own classes, whatever subset of FIDS30 the preset grows."""
    from farm.pipeline.experiment import Settings, _image_classes, run

    root = digit_folder(tmp_path / "data")
    config = load_config(TRIALS, preset)
    only = image_families(config)
    assert only, f"preset {preset} grows no image family"
    settings = Settings(trials_dir=TRIALS, preset=preset, image_data=str(root), only=only,
                        dry_run=True, storage_path=str(tmp_path / "results"), name="dry")
    assert run(settings) is None
    out = capsys.readouterr().out

    families = {name: config["families"][name] for name in only}
    classes = _image_classes(families, settings, config["data"])
    assert classes == {"digits": DIGITS}
    planned = plan_trials(families, config["data"].get("split_seed", 0), {"image": ["digits"]},
                          classes)
    assert f"would grow {len(planned)} trials" in out
    assert {t["dataset"] for t in planned} == {"digits"}
    per_class = {t["class"] for t in planned if t["class"] is not None}
    assert per_class <= set(DIGITS)
    if any(families[n].get("per_class") for n in families):
        assert per_class == set(DIGITS)
    assert "apples" not in out and "bananas" not in out
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_fids30_subset_still_applies_to_fids30(shared_data):
    from farm.pipeline.experiment import Settings, _image_classes

    config = load_config(TRIALS, "smoke")
    families = {name: config["families"][name] for name in image_families(config)}
    settings = Settings(trials_dir=TRIALS, data_dir=str(shared_data))
    expected = tuple(config["data"]["images"]["classes"]["fids30"])
    assert _image_classes(families, settings, config["data"]) == {"fids30": expected}


def test_prepare_images_uses_every_class_of_a_users_folder(tmp_path):
    """The run's own preparation (decoding, split, judge) under the smoke preset's data."""
    root = digit_folder(tmp_path / "data")
    data = load_config(TRIALS, "smoke")["data"]
    data["images"] = {**data["images"], "size": 16, "judge": {"arch": "tiny", "epochs": 1}}
    prepared = prepare_images("digits", root, data, tmp_path / "experiment", seed=0)
    assert prepared.images.classes == DIGITS
    assert prepared.trial_data.classes == DIGITS


# ---------------------------------------------------------------- an unknown class: before decoding


def unknown_class_trials(tmp_path: Path, classes: str) -> Path:
    trials = Path(shutil.copytree(TRIALS, tmp_path / "trials"))
    (trials / "presets" / "mine.yaml").write_text(
        f"data:\n  images:\n    classes: {classes}\n")
    return trials


@pytest.mark.parametrize("classes", ["{digits: ['0', seven]}", "['0', seven]"])
def test_unknown_class_is_one_line_naming_the_folder_before_decoding(tmp_path, classes,
                                                                     no_decoding):
    from farm.pipeline.experiment import Settings, run

    root = digit_folder(tmp_path / "data")
    trials = unknown_class_trials(tmp_path, classes)
    only = image_families(load_config(trials, "mine"))
    settings = Settings(trials_dir=trials, preset="mine", image_data=str(root), only=only,
                        dry_run=True, storage_path=str(tmp_path / "results"), name="dry")
    with pytest.raises(ConfigError) as caught:
        run(settings)
    message = str(caught.value)
    assert caught.value.where == str(root)
    assert "'seven'" in message and "digits" in message and "\n" not in message


def test_prepare_images_checks_the_subset_before_decoding(tmp_path, no_decoding):
    root = digit_folder(tmp_path / "data")
    data = {"images": {"classes": {"digits": ["0", "seven"]}, "size": 16}}
    with pytest.raises(ConfigError, match="'seven'") as caught:
        prepare_images("digits", root, data, tmp_path / "experiment", seed=0)
    assert caught.value.where == str(root)
