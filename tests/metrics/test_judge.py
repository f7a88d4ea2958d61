"""Tests for farm.metrics.judge: a tiny judge learns easy classes, saves safely, and separates
them in KID."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from farm.config.classifiers import JudgeConfig
from farm.data.images import load_image_folder
from farm.infra.errors import ConfigError, DataError
from farm.metrics.judge import Judge, augment, build_model, judge_space_kid, train_judge

TINY = JudgeConfig(arch="tiny", epochs=8, batch_size=32, lr=3e-3, weight_decay=0.0, seed=0)
FRUITS = ("apples", "bananas", "cherries")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These nets are tiny: a second thread does not help, and on a busy 2-core machine
    OpenMP's waiting makes every step tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _colours(per_class=40, size=16, seed=0):
    """Solid red / green / blue images with noise, in [-1, 1]: an easy 3-class problem."""
    g = torch.Generator().manual_seed(seed)
    base = -torch.ones(3, 3)
    base.fill_diagonal_(0.6)
    labels = torch.arange(3).repeat_interleave(per_class)
    images = base[labels][:, :, None, None] + 0.3 * torch.randn(
        len(labels), 3, size, size, generator=g)
    return images.clamp(-1, 1), labels


@pytest.fixture(scope="module")
def colour_judge():
    images, labels = _colours()
    return train_judge(images, labels, 3, TINY, progress=None, classes=("red", "green", "blue"))


@pytest.fixture(scope="module")
def fruits(shared_data):
    data = load_image_folder(shared_data / "fids30", size=32)
    keep = np.isin(data.labels, [data.classes.index(c) for c in FRUITS])
    remap = {data.classes.index(c): i for i, c in enumerate(FRUITS)}
    labels = torch.tensor([remap[int(c)] for c in data.labels[keep]])
    return data.to_tensor(keep), labels


def test_tiny_judge_learns_colours(colour_judge):
    images, labels = _colours(per_class=20, seed=1)  # fresh samples, not the training ones
    assert colour_judge.accuracy(images, labels) > 0.9
    assert colour_judge.best_epoch is not None and colour_judge.val_accuracy is not None
    probs = colour_judge.probs(images)
    assert probs.shape == (60, 3)
    assert torch.allclose(probs.sum(1), torch.ones(60))
    assert torch.equal(colour_judge.predict(images), probs.argmax(1))


def test_features_shape_and_batching(colour_judge):
    images, _ = _colours(per_class=5, seed=2)
    feats = colour_judge.features(images)
    assert feats.shape == (15, 128) and feats.dtype == torch.float32
    assert torch.allclose(colour_judge.features(images, batch_size=4), feats, atol=1e-6)


def test_one_pass_gives_the_same_features_and_classes(colour_judge):
    images, _ = _colours(per_class=5, seed=3)
    features, predictions = colour_judge.features_and_predictions(images, batch_size=4)
    assert torch.allclose(features, colour_judge.features(images), atol=1e-6)
    assert torch.equal(predictions, colour_judge.predict(images))


def test_training_is_deterministic_and_reports_progress():
    images, labels = _colours(per_class=10)
    config = JudgeConfig(arch="tiny", epochs=2, batch_size=8, seed=3)
    lines = []
    first = train_judge(images, labels, 3, config, progress=lines.append)
    second = train_judge(images, labels, 3, config, progress=None)
    assert torch.equal(first.logits(images), second.logits(images))
    assert len(lines) == 3 and lines[0].startswith("epoch 1/2")


def test_progress_says_each_quarter_unless_verbose():
    """A long judge speaks at each quarter and at the kept epoch; --debug hears every epoch."""
    images, labels = _colours(per_class=10)
    config = JudgeConfig(arch="tiny", epochs=8, batch_size=8, seed=3)
    quiet, verbose = [], []
    train_judge(images, labels, 3, config, progress=quiet.append)
    train_judge(images, labels, 3, config, progress=verbose.append, verbose=True)
    assert [line.split(":")[0] for line in quiet[:-1]] == [f"epoch {e}/8" for e in (2, 4, 6, 8)]
    assert len(verbose) == 9 and quiet[-1] == verbose[-1] and quiet[-1].startswith("kept epoch")


def test_save_load_round_trip(colour_judge, tmp_path):
    path = tmp_path / "judges" / "judge.pt"
    colour_judge.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["judge.pt"]  # no temp file left over
    payload = torch.load(path, weights_only=True)
    assert payload["config"]["arch"] == "tiny" and payload["classes"] == ["red", "green", "blue"]
    loaded = Judge.load(path, "cpu")
    images, _ = _colours(per_class=4, seed=3)
    assert torch.equal(loaded.logits(images), colour_judge.logits(images))
    assert loaded.config == colour_judge.config and loaded.classes == colour_judge.classes
    assert loaded.best_epoch == colour_judge.best_epoch


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        Judge.load(tmp_path / "nope.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a judge"):
        Judge.load(tmp_path / "other.pt")


def test_kid_separates_classes_in_judge_space(colour_judge):
    images, labels = _colours(per_class=30, seed=4)
    red, green = images[labels == 0], images[labels == 1]
    g = torch.Generator().manual_seed(0)
    same, _ = judge_space_kid(colour_judge, red[:15], red[15:], subsets=10, generator=g)
    other, _ = judge_space_kid(colour_judge, red, green, subsets=10, generator=g)
    assert other > 10 * max(same, 1e-6) and other > 0


def test_real_fruits_train_above_chance(fruits):
    images, labels = fruits
    config = JudgeConfig(arch="tiny", epochs=6, batch_size=32, lr=3e-3, seed=0)
    judge = train_judge(images, labels, 3, config, progress=None, classes=FRUITS)
    assert judge.accuracy(images, labels) > 0.5  # chance is about 1/3
    assert judge.features(images[:5]).shape == (5, 128)


@pytest.mark.parametrize("arch,stem,size", [("resnet18", True, 32), ("resnet18", False, 64),
                                            ("resnet34", True, 16)])
def test_resnets_build_without_weights(arch, stem, size):
    net = build_model(arch, 5, small_input_stem=stem)
    assert (net.body.conv1.kernel_size == (3, 3)) is stem
    net.eval()
    with torch.no_grad():
        assert net.body(torch.zeros(2, 3, size, size)).shape == (2, 512)
        assert net(torch.zeros(2, 3, size, size)).shape == (2, 5)


@pytest.mark.parametrize("arch,blocks", [("resnet18", 8), ("resnet34", 16)])
def test_a_narrow_resnet_has_the_same_blocks_at_a_quarter_of_the_parameters(arch, blocks):
    full, narrow = build_model(arch, 5, False), build_model(arch, 5, False, width=32)

    def count(net):
        return sum(p.numel() for p in net.parameters())
    assert narrow.body.conv1.out_channels == 32 and narrow.head.in_features == 256
    assert sum(1 for m in narrow.modules() if type(m).__name__ == "BasicBlock") == blocks
    assert 0.2 < count(narrow) / count(full) < 0.3
    narrow.eval()
    with torch.no_grad():
        assert narrow(torch.zeros(2, 3, 64, 64)).shape == (2, 5)


def test_a_judge_of_another_width_loads_as_it_was_saved(tmp_path):
    images, labels = _colours(per_class=4)
    config = JudgeConfig(arch="resnet18", width=8, small_input_stem=False, epochs=1, seed=0)
    judge = train_judge(images, labels, 3, config, progress=None)
    judge.save(tmp_path / "judge.pt")
    loaded = Judge.load(tmp_path / "judge.pt", "cpu")
    assert loaded.config.width == 8 and loaded.features(images[:2]).shape == (2, 64)
    assert torch.equal(loaded.logits(images), judge.logits(images))


def test_augment_keeps_shape_and_content():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # Reflection padding and flips only move pixels around: every value comes from the image.
    assert set(out.flatten().tolist()) <= set(x.flatten().tolist())


def test_augment_with_zero_offset_and_no_flip_is_identity(monkeypatch):
    x = torch.randn(4, 3, 8, 8)
    monkeypatch.setattr(torch, "rand", lambda n, **kw: torch.ones(n))
    monkeypatch.setattr(torch, "randint", lambda lo, hi, shape, **kw: torch.full(shape, 4))
    assert torch.equal(augment(x, torch.Generator()), x)


@pytest.mark.parametrize("kwargs", [{"arch": "vgg"}, {"epochs": 0}, {"val_fraction": 1.0},
                                    {"lr": 0.0}, {"batch_size": 1}, {"width": 2}])
def test_bad_config_is_a_config_error(kwargs):
    with pytest.raises(ConfigError):
        JudgeConfig(**kwargs)


def test_bad_inputs_are_value_errors():
    images, labels = _colours(per_class=3)
    with pytest.raises(ValueError, match="float"):
        train_judge((images * 127).to(torch.uint8), labels, 3, TINY, progress=None)
    with pytest.raises(ValueError, match="labels"):
        train_judge(images, labels[:-1], 3, TINY, progress=None)
    with pytest.raises(ValueError, match="lie in"):
        train_judge(images, labels + 1, 3, TINY, progress=None)
