"""Image export: the judge's filter over a trial's draws, and the manifest that records it."""

from __future__ import annotations

import json

import numpy as np
import torch

from farm.data.images import write_image_folder
from farm.pipeline.export import keep_most_like_their_class

CLASSES = ("apples", "bananas", "cherries")


class ColourJudge:
    """Stands in for the judge: class k is as likely as the image's mean in channel k."""

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)).softmax(dim=1)


def _draws(channel_means):
    """uint8 images [N, 4, 4, 3], image i flat grey except channel 0 at channel_means[i]."""
    images = np.full((len(channel_means), 4, 4, 3), 100, np.uint8)
    images[..., 0] = np.asarray(channel_means, np.uint8)[:, None, None]
    return images


def test_the_filter_keeps_the_draws_the_judge_finds_most_like_their_class():
    apples = _draws([10, 250, 90, 200, 30, 160])  # red: apples by the stand-in judge
    bananas = _draws([250, 10, 200, 40])          # the less red, the more like bananas
    kept, indices = keep_most_like_their_class({"apples": apples, "bananas": bananas},
                                               ColourJudge(), CLASSES, keep=3)
    assert indices == {"apples": [1, 3, 5], "bananas": [1, 3, 2]}
    assert (kept["apples"] == apples[[1, 3, 5]]).all()
    assert (kept["bananas"] == bananas[[1, 3, 2]]).all()


def test_the_manifest_names_each_kept_file_by_its_index_in_the_draw(tmp_path):
    images = _draws([10, 250, 90, 200])
    kept, indices = keep_most_like_their_class({"apples": images}, ColourJudge(), CLASSES, keep=2)
    write_image_folder(kept, tmp_path / "t", {"trial": "t", "samples": 4}, indices)
    files = json.loads((tmp_path / "t" / "manifest.json").read_text())["files"]
    assert [(f["file"], f["index"]) for f in files] == [("apples/0000.png", 1),
                                                        ("apples/0001.png", 3)]
    write_image_folder({"apples": images[:2]}, tmp_path / "u", {"trial": "u"})
    files = json.loads((tmp_path / "u" / "manifest.json").read_text())["files"]
    assert [f["index"] for f in files] == [0, 1]  # unfiltered: the position is the index
