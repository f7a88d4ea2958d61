"""Where an experiment lives: folder paths and bucket URIs (no server needed here; the farm
against an S3 endpoint is tests/integration/test_remote_storage.py)."""

from __future__ import annotations

import pytest

from farm.infra.errors import ConfigError
from farm.infra.storage import Store, join, parent, remove


def test_join_keeps_a_uris_options_after_the_path():
    uri = "s3://bucket/pre/fix?scheme=http&endpoint_override=h:9000"
    assert join(uri, "exp", "tune") == "s3://bucket/pre/fix/exp/tune?scheme=http&endpoint_override=h:9000"
    assert join("s3://bucket", "exp") == "s3://bucket/exp"
    assert join("/data/runs", "exp", "tune") == "/data/runs/exp/tune"
    assert parent(join(uri, "exp")) == uri and parent("s3://bucket/exp") == "s3://bucket"


def test_a_folder_is_its_own_home(tmp_path):
    store = Store.open(str(tmp_path / "runs"), "exp")
    assert not store.remote and store.folder == tmp_path / "runs" / "exp"
    assert store.home == str(tmp_path / "runs" / "exp")
    assert store.location("tune") == str(tmp_path / "runs" / "exp" / "tune")
    store.push(), store.pull(), store.check_writable()  # no copies to make
    store.folder.mkdir(parents=True)
    (store.folder / "keep.txt").write_text("x")
    store.clear()  # never deletes an experiment that is its own home
    assert (store.folder / "keep.txt").exists() and store.exists("keep.txt")


def test_a_bucket_gets_a_local_copy_per_prefix_and_name(tmp_path, monkeypatch):
    monkeypatch.setenv("FARM_MIRROR", str(tmp_path / "mirror"))
    a = Store.open("s3://bucket/team-a?region=eu-west-1", "exp")
    b = Store.open("s3://bucket/team-b", "exp")
    assert a.remote and a.home == "s3://bucket/team-a/exp?region=eu-west-1"
    assert a.location("tune") == "s3://bucket/team-a/exp/tune?region=eu-west-1"
    assert a.folder.parent.parent == tmp_path / "mirror" and a.folder.name == "exp"
    assert a.folder != b.folder


@pytest.mark.parametrize("uri, says", [
    ("s3://AKIA:hunter2@bucket/prefix", "credentials in the URI"),
    ("s3://bucket/prefix?secret_key=hunter2", "credentials in the URI"),
    ("s3:///prefix", "name a bucket"),
])
def test_a_uri_with_credentials_or_no_bucket_is_refused_without_echoing_secrets(uri, says):
    with pytest.raises(ConfigError) as caught:
        Store.open(uri, "exp")
    assert says in str(caught.value) and "hunter2" not in str(caught.value)


def test_remove_deletes_a_folder_or_a_uris_folder(tmp_path):
    (tmp_path / "run" / "sub").mkdir(parents=True)
    (tmp_path / "run" / "sub" / "f").write_text("x")
    remove(str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    (tmp_path / "run2").mkdir()
    remove(f"file://{tmp_path / 'run2'}")
    assert not (tmp_path / "run2").exists()
    remove(f"file://{tmp_path / 'never'}")  # nothing there: nothing to do
