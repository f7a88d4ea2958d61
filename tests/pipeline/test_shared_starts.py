"""The driver grows each shared start once, keeps it in the experiment, and reuses it."""

import pytest
import torch
from PIL import Image

from farm.pipeline import shared_starts
from tests.families.conftest import colour_data

PARAMS = {"g_width": 4, "discriminator": "DCGAN", "d_width": 4, "optimizer": "adam",
          "lecam": 0.3, "ema_decay": 0.9, "ema_start": 1, "batch_size": 8, "shared_start": 1}


@pytest.fixture(scope="module")
def data():
    return colour_data()


def _trial(class_name, tag="variant=transfer", **params):
    return {"family": "fruit-pairs", "kind": "fruit-pairs", "dataset": "colours",
            "class": class_name, "tag": tag, "params": {**PARAMS, **params}}


def test_one_start_per_setting_grown_once_and_reused(data, tmp_path, capsys):
    trials = [_trial(c) for c in ("red", "green", "blue")] + [
        _trial("red", tag="variant=transfer,seed#1"), _trial("red", tag="scratch",
                                                             shared_start=0)]
    starts = shared_starts.grow_shared_starts(trials, {"colours": data}, tmp_path, seed=0)
    assert sorted(starts["colours"]) == ["fruit-pairs|colours|variant=transfer",
                                         "fruit-pairs|colours|variant=transfer,seed#1"]
    assert capsys.readouterr().out.count("Growing the shared start") == 2
    one, other = (starts["colours"][k]["generator"] for k in sorted(starts["colours"]))
    assert any(not torch.equal(one[name], other[name]) for name in one)  # a seed per start
    files = sorted(p.name for p in (tmp_path / "starts").glob("*.pt"))
    assert [f.rsplit("-", 1)[0] for f in files] == ["fruit-pairs_colours_variant_transfer",
                                                    "fruit-pairs_colours_variant_transfer_seed_1"]
    # each start's samples: a picture beside it, kept out of what every trial is handed
    assert all("samples" not in weights for weights in starts["colours"].values())
    pictures = shared_starts.start_pictures(trials, tmp_path)
    assert sorted(pictures) == ["shared start/" + k for k in sorted(starts["colours"])]
    with Image.open(pictures["shared start/fruit-pairs|colours|variant=transfer"]) as picture:
        assert picture.mode == "RGB" and picture.width > picture.height > 0
    # a resumed run reads them back (weights only) and grows nothing
    again = shared_starts.grow_shared_starts(trials, {"colours": data}, tmp_path, seed=0)
    out = capsys.readouterr().out
    assert "Growing" not in out and out.count("reusing") == 2
    key = "fruit-pairs|colours|variant=transfer"
    assert "samples" not in again["colours"][key]
    for part in ("generator", "discriminator"):
        assert all(torch.equal(again["colours"][key][part][name], value)
                   for name, value in starts["colours"][key][part].items())


def test_keys_that_read_alike_get_files_of_their_own(tmp_path):
    names = {shared_starts.start_file(tmp_path, key).name
             for key in ("f|d|a=b,c", "f|d|a_b=c", "f|d|A=b,c")}
    assert len(names) == 3


def test_no_start_is_grown_for_trials_without_one(data, tmp_path):
    assert shared_starts.grow_shared_starts([_trial("red", shared_start=0)], {"colours": data},
                                            tmp_path, seed=0) == {}
    assert not (tmp_path / "starts").exists()
