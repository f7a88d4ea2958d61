"""Stratified fit/val/test split and its manifest (written once, checked on resume)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from farm.data.split import (Split, load_or_create, read_manifest, sha256_of, stratified_split,
                             write_manifest)
from farm.data.tabular import load_table
from farm.infra.errors import DataError

DATASETS = {"german_credit": "german_credit/german_credit.arff",
            "diabetes": "diabetes/diabetes.arff"}
GERMAN_SHA = "bd94085134e4eb845c96b34c93ed65a223f89d089bacb273ef96f57509ce0bed"


@pytest.fixture(scope="module", params=sorted(DATASETS))
def labelled(request, shared_data):
    path = shared_data / DATASETS[request.param]
    return request.param, path, load_table(path).labels


def make(labels, seed=0, test=0.3, val=0.2, sha="0" * 64, name="ds") -> Split:
    return stratified_split(labels, test, val, seed, name, sha)


def test_parts_are_disjoint_and_cover_all_rows(labelled):
    _, _, labels = labelled
    split = make(labels)
    fit, val, test = set(split.fit), set(split.val), set(split.test)
    assert not fit & val and not fit & test and not val & test
    assert fit | val | test == set(range(len(labels)))
    assert len(split.fit) + len(split.val) + len(split.test) == len(labels)
    assert list(split.fit) == sorted(split.fit)  # stored sorted
    assert all(isinstance(i, int) for i in split.fit + split.val + split.test)
    assert split.train.dtype == np.int64
    assert sorted(split.train.tolist()) == sorted(fit | val)


def test_stratified_proportions_per_class(labelled):
    _, _, labels = labelled
    split = make(labels)
    total = Counter(labels)
    test = Counter(labels[list(split.test)])
    train = Counter(labels[split.train])
    val = Counter(labels[list(split.val)])
    assert len(split.test) == pytest.approx(0.3 * len(labels), abs=1)
    assert len(split.val) == pytest.approx(0.2 * len(split.train), abs=1)
    for label, count in total.items():
        assert abs(test[label] - 0.3 * count) <= 1, (label, test[label], count)
        assert abs(val[label] - 0.2 * train[label]) <= 1, (label, val[label], train[label])
        assert train[label] + test[label] == count


def test_known_counts_german(shared_data):
    labels = load_table(shared_data / DATASETS["german_credit"]).labels
    split = make(labels)
    assert (len(split.fit), len(split.val), len(split.test)) == (560, 140, 300)
    assert Counter(labels[list(split.test)]) == {"good": 210, "bad": 90}
    assert Counter(labels[list(split.val)]) == {"good": 98, "bad": 42}


def test_same_seed_same_split_other_seed_differs(labelled):
    _, _, labels = labelled
    first, again = make(labels, seed=3), make(labels, seed=3)
    assert first == again
    other = make(labels, seed=4)
    assert other.test != first.test
    assert other.val != first.val
    assert len(other.test) == len(first.test)


def test_no_val_fraction_keeps_all_train_for_fit(labelled):
    _, _, labels = labelled
    split = make(labels, val=0.0)
    assert split.val == ()
    assert set(split.fit) | set(split.test) == set(range(len(labels)))


def test_rare_class_falls_back_to_unstratified():
    labels = np.array(["a"] * 30 + ["b"])  # one row of "b": cannot stratify
    split = make(labels, test=0.3, val=0.2)
    assert set(split.fit) | set(split.val) | set(split.test) == set(range(31))


def test_manifest_round_trip(tmp_path, labelled):
    name, path, labels = labelled
    split = make(labels, seed=11, sha=sha256_of(path), name=name)
    manifest = tmp_path / "deep" / "er" / "split.json"
    write_manifest(split, manifest)
    assert manifest.is_file()
    assert [p.name for p in manifest.parent.iterdir()] == ["split.json"]  # no temp files left
    data = json.loads(manifest.read_text())
    assert data["seed"] == 11 and data["dataset"] == name
    assert data["test"] == list(split.test)
    assert read_manifest(manifest) == split


def test_sha256_of_file_and_folder(shared_data, tmp_path):
    assert sha256_of(shared_data / DATASETS["german_credit"]) == GERMAN_SHA
    folder = tmp_path / "imgs"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.txt").write_bytes(b"one")
    first = sha256_of(folder)
    assert sha256_of(folder) == first
    (folder / "a" / "1.txt").write_bytes(b"two")
    assert sha256_of(folder) != first


@pytest.mark.parametrize("content", [
    "{not json",
    '{"dataset": "x"}',
    "[]",
])
def test_unreadable_manifest(tmp_path, content):
    manifest = tmp_path / "split.json"
    manifest.write_text(content)
    with pytest.raises(DataError) as info:
        read_manifest(manifest)
    assert str(manifest) in str(info.value)
    assert "\n" not in str(info.value)


def _load(manifest, labels, **overrides):
    kwargs = dict(test_fraction=0.3, val_fraction=0.2, seed=0, dataset="diabetes",
                  source_sha256="a" * 64)
    kwargs.update(overrides)
    return load_or_create(manifest, labels, **kwargs)


def test_load_or_create_writes_then_reuses(tmp_path, shared_data):
    labels = load_table(shared_data / DATASETS["diabetes"]).labels
    manifest = tmp_path / "exp" / "splits" / "diabetes.json"
    created = _load(manifest, labels)
    assert manifest.is_file()
    assert created == make(labels, sha="a" * 64, name="diabetes")
    written = manifest.read_bytes()
    # Different labels prove the second call reads the manifest instead of splitting again.
    shuffled = np.random.default_rng(1).permutation(labels)
    reused = _load(manifest, shuffled)
    assert reused == created
    assert manifest.read_bytes() == written


def test_load_or_create_refuses_changed_data(tmp_path, shared_data):
    labels = load_table(shared_data / DATASETS["diabetes"]).labels
    manifest = tmp_path / "split.json"
    _load(manifest, labels)
    before = manifest.read_bytes()
    with pytest.raises(DataError) as info:
        _load(manifest, labels, source_sha256="b" * 64)
    message = str(info.value)
    assert str(manifest) in message and "sha256" in message and "'diabetes'" in message
    assert manifest.read_bytes() == before


@pytest.mark.parametrize("change", [{"seed": 1}, {"test_fraction": 0.25}, {"val_fraction": 0.1}])
def test_load_or_create_refuses_other_settings(tmp_path, shared_data, change):
    labels = load_table(shared_data / DATASETS["diabetes"]).labels
    manifest = tmp_path / "split.json"
    _load(manifest, labels)
    with pytest.raises(DataError) as info:
        _load(manifest, labels, **change)
    message = str(info.value)
    assert str(manifest) in message and "seed 0" in message
    assert "\n" not in message


def test_load_or_create_refuses_edited_manifest(tmp_path, shared_data):
    labels = load_table(shared_data / DATASETS["diabetes"]).labels
    manifest = tmp_path / "split.json"
    created = _load(manifest, labels)
    write_manifest(replace(created, seed=9), manifest)
    with pytest.raises(DataError, match="seed 9"):
        _load(manifest, labels)


def test_an_image_val_slice_comes_from_each_class_and_keeps_the_test_split(tmp_path):
    from farm.data.split import load_or_create

    labels = np.repeat(np.arange(4), [30, 10, 4, 3])
    plain = load_or_create(tmp_path / "a.json", labels, test_fraction=0.2, val_fraction=0.0,
                           seed=3, dataset="d", source_sha256="x", val_by_class=True)
    carved = load_or_create(tmp_path / "b.json", labels, test_fraction=0.2, val_fraction=0.2,
                            seed=3, dataset="d", source_sha256="x", val_by_class=True)
    assert carved.test == plain.test and carved.train.tolist() == sorted(plain.fit)
    val_counts = np.bincount(labels[list(carved.val)], minlength=4)
    fit_counts = np.bincount(labels[list(carved.fit)], minlength=4)
    assert val_counts[0] == round(0.2 * (fit_counts[0] + val_counts[0]))
    assert (val_counts >= 1).all() and (fit_counts >= 1).all()  # every class scored and grown
    assert not set(carved.val) & set(carved.fit) and carved.val_fraction == 0.2
    again = load_or_create(tmp_path / "b.json", labels, test_fraction=0.2, val_fraction=0.2,
                           seed=3, dataset="d", source_sha256="x", val_by_class=True)
    assert again == carved
