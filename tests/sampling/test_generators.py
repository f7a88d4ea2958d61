"""Generators without an experiment: every family kind through its file and back, the noise
streams, the schema of the rows, and the one-line refusals (bad requests, foreign files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from farm.data.tabular import load_table
from farm.data.transformer import TableTransformer
from farm.infra.errors import ConfigError, GeneratorFileError
from farm.models.blackbox import fit_black_box
from farm.sampling import generator_file, generators
from farm.sampling.generators import Generator, image_data, load_generator, table_data

CLASSES = ["apples", "bananas", "cherries"]
SMALL_IMAGES = {"g_width": 4, "discriminator": "DCGAN", "d_width": 4}


@pytest.fixture(scope="module")
def diabetes(shared_data):
    table = load_table(shared_data / "diabetes" / "diabetes.arff")
    transformer = TableTransformer(table.columns, snap=True).fit(table.frame)
    features = transformer.feature_slices(table.target)
    box = fit_black_box(transformer.transform(table.frame)[:, features], table.labels,
                        transformer.block(table.target).column.categories, features, seed=0)
    return table, transformer, box


def _spec(kind, params, data, **about):
    return {"kind": kind, "params": params, "data": data,
            "about": {"trial": f"{kind}_test", "family": kind, "class": None, **about}}


@pytest.fixture(scope="module")
def made(diabetes):
    """One untrained generator of every kind, at small widths (seeded weights)."""
    table, transformer, box = diabetes
    rows = table_data("diabetes", transformer, table.target)
    specs = {
        "tabular-a": (_spec("tabular-a", {"g_output": "blockwise", "g_batchnorm": True}, rows),
                      None),
        "tabular-b": (_spec("tabular-b", {"conf_net": True, "conf_weight": 50.0,
                                          "realness": True, "pick_best_of": 4,
                                          "emit_label": True, "g_output": "blockwise"},
                            table_data("diabetes", transformer, table.target, box)), box.forest),
        "fruit-pairs": (_spec("fruit-pairs", SMALL_IMAGES, image_data("fids30", CLASSES, 32),
                             **{"class": "bananas"}), None),
        "spiked": (_spec("spiked", {**SMALL_IMAGES, "generator": "G1"},
                               image_data("fids30", CLASSES, 64)), None),
        "conditional": (_spec("conditional", {"g_width": 4, "d_width": 4,
                                                          "z_dim": 8},
                                    image_data("fids30", CLASSES, 32)), None),
    }
    torch.manual_seed(0)
    made = {kind: Generator(spec, None, forest) for kind, (spec, forest) in specs.items()}
    made["tabular-forest"] = Generator(_spec("tabular-forest", FOREST, rows), _grown_forest(
        transformer, table))  # a forest samples only once grown: a few rounds of a small one
    return made


FOREST = {"n_t": 4, "duplicate_k": 2, "max_depth": 3}


def _grown_forest(transformer, table) -> dict:
    from farm.models.forest_flow import FlowProblems, ForestFlow, booster_params

    encoded = transformer.transform(table.frame)
    block = transformer.block(table.target)
    labels = encoded[:, block.start:block.stop].argmax(axis=1)
    problems = FlowProblems(2 * encoded - 1, labels, FOREST["n_t"], FOREST["duplicate_k"], 0)
    forest = ForestFlow(transformer.width, FOREST["n_t"], problems.class_counts)
    problems.grow(forest, 3, booster_params(FOREST["max_depth"], 0.3, 0))
    return forest.state_dict()


def _draw(generator, n, seed, **request):
    return generator.sample(n, seed=seed, **request)


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        return True
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("kind", ["tabular-a", "tabular-b", "tabular-forest", "fruit-pairs",
                                  "spiked", "conditional"])
def test_every_kind_samples_the_same_from_its_file(made, kind, tmp_path):
    generator = made[kind]
    first = _draw(generator, 6, 11)
    assert _same(first, _draw(generator, 6, 11))  # same seed, same output
    assert not _same(first, _draw(generator, 6, 12)) if generator.modality == "image" else \
        not first.equals(_draw(generator, 6, 12))
    loaded = load_generator(generator.save(tmp_path / "g.gen"))
    assert _same(first, _draw(loaded, 6, 11))
    assert loaded.spec == generator.spec and loaded.classes == generator.classes


def test_rows_keep_the_tables_schema(made, diabetes):
    table, _, _ = diabetes
    plain, steered = made["tabular-a"].sample(50, seed=1), made["tabular-b"].sample(50, seed=1)
    trees = made["tabular-forest"].sample(50, seed=1)
    assert list(plain.columns) == list(trees.columns) == list(table.frame.columns)
    assert list(steered.columns) == list(table.frame.columns) + ["requested_confidence",
                                                                 "achieved_confidence"]
    for column in table.columns:
        for frame in (plain, steered, trees):
            if column.kind == "nominal":
                assert set(frame[column.name]) <= set(column.categories)
            else:
                assert frame[column.name].dtype == table.frame[column.name].dtype, column.name
    assert np.array_equal(steered["requested_confidence"], np.round(np.linspace(0, 1, 50), 4))
    at = made["tabular-b"].sample(20, seed=1, confidence=0.3)
    assert (at["requested_confidence"] == 0.3).all()
    assert made["tabular-b"].noise(20, 1) == [{"stream_seed": 1, "draws": [0, 80],
                                               "draws_per_row": 4}]


def test_long_samples_read_one_stream_in_blocks(made, monkeypatch):
    """Blocks bound the memory, not the result: the first block of a long sample is a short
    sample of the same seed."""
    monkeypatch.setattr(generators, "ROW_BLOCK", 7)
    monkeypatch.setattr(generators, "REQUEST_BLOCK", 5)
    monkeypatch.setattr(generators, "IMAGE_BLOCK", 2)
    rows = made["tabular-a"].sample(20, seed=3)
    assert len(rows) == 20 and rows.index.tolist() == list(range(20))
    pd.testing.assert_frame_equal(rows.head(7), made["tabular-a"].sample(7, seed=3))
    trees = made["tabular-forest"].sample(20, seed=3)
    pd.testing.assert_frame_equal(trees.head(7), made["tabular-forest"].sample(7, seed=3))
    asked = made["tabular-b"].sample(12, seed=3, confidence=0.5)
    pd.testing.assert_frame_equal(asked.head(5), made["tabular-b"].sample(5, seed=3,
                                                                           confidence=0.5))
    images, _ = made["conditional"].sample(5, seed=3, classes=["apples"])
    assert np.array_equal(images[:2], made["conditional"].sample(2, seed=3,
                                                                       classes=["apples"])[0])
    assert len(set(map(bytes, images))) == 5  # the blocks read on, never the same noise again


def test_a_class_draws_the_same_images_alone_or_with_others(made):
    generator = made["conditional"]
    images, labels = generator.sample(3, seed=5)
    assert images.shape == (9, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [c for c in CLASSES for _ in range(3)]
    alone, _ = generator.sample(3, seed=5, classes=["cherries", "apples"])
    assert np.array_equal(alone[:3], images[6:]) and np.array_equal(alone[3:], images[:3])
    assert [s["stream_seed"] for s in generator.noise(3, 5)] == [5, 6, 7]
    assert made["fruit-pairs"].classes == ("bananas",)
    assert made["spiked"].sample(2, seed=0)[0].shape == (6, 64, 64, 3)


@pytest.mark.parametrize("kind, request_, expect", [
    ("tabular-a", {"n": 0}, "n must be a whole number of at least 1, got 0"),
    ("tabular-a", {"n": 2.5}, "got 2.5"),
    ("conditional", {"n": -3}, "got -3"),
    ("tabular-a", {"classes": ["apples"]}, "makes rows of a table; classes= is for image"),
    ("tabular-a", {"confidence": 0.5}, "confidence is asked of tabular-b only"),
    ("tabular-b", {"confidence": 1.5}, "confidence must be in [0, 1], got 1.5"),
    ("tabular-b", {"confidence": -0.1}, "got -0.1"),
    ("conditional", {"classes": ["kiwis"]}, "makes no class 'kiwis'; it makes apples"),
    ("fruit-pairs", {"classes": ["apples"]}, "makes no class 'apples'; it makes bananas"),
    ("conditional", {"confidence": 0.5}, "makes images; confidence= is for tabular-b"),
])
def test_bad_requests_are_one_line(made, kind, request_, expect):
    request_ = {"n": 4, **request_}
    with pytest.raises(ConfigError) as caught:
        made[kind].sample(request_.pop("n"), seed=0, **request_)
    assert expect in str(caught.value) and "\n" not in str(caught.value)


def _foreign(kind: str, path):
    if kind == "text":
        path.write_text("preg,plas\n1,2\n")
    elif kind == "pickled-module":
        torch.save(torch.nn.Linear(2, 2), path)  # loading it would run the pickle: refused
    elif kind == "plain-weights":
        torch.save({"weight": torch.zeros(2)}, path)
    elif kind == "newer":
        torch.save({"format": generator_file.FORMAT, "version": generator_file.VERSION + 1},
                   path)
    elif kind == "damaged":
        torch.save({"format": generator_file.FORMAT, "version": generator_file.VERSION,
                    "spec": "{not json"}, path)
    return path


@pytest.mark.parametrize("kind, expect", [
    ("text", "not a GAN Farm generator file (not a weights-only torch archive)"),
    ("pickled-module", "not a GAN Farm generator file (not a weights-only torch archive)"),
    ("plain-weights", "not a GAN Farm generator file (no 'format: gan-farm generator'"),
    ("newer", "generator file format version 2 is newer than this farm reads (1)"),
    ("damaged", "damaged generator file"),
    ("missing", "no such file"),
])
def test_old_or_foreign_files_are_one_line(kind, expect, tmp_path):
    path = _foreign(kind, tmp_path / "x.gen")
    with pytest.raises(GeneratorFileError) as caught:
        load_generator(path)
    assert str(caught.value).startswith(f"{path}: ") and expect in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_file_whose_weights_do_not_fit_its_spec_is_one_line(made, tmp_path):
    generator = made["conditional"]
    spec = {**generator.spec, "params": {**generator.spec["params"], "g_width": 8}}
    generator_file.write(tmp_path / "x.gen", spec, generator.module.state_dict(), {})
    with pytest.raises(GeneratorFileError, match="the weights do not fit the model the spec"):
        load_generator(tmp_path / "x.gen")
