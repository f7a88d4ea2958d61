"""resolve_dataset against a real HTTP server on 127.0.0.1 (never the real mirrors)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import shutil
import stat
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from farm.data.fetch import resolve_dataset, safe_extract_zip
from farm.data.registry import DatasetSource, Mirror, get_source
from farm.infra.errors import DataError, DownloadError

GERMAN_SHA = "bd94085134e4eb845c96b34c93ed65a223f89d089bacb273ef96f57509ce0bed"
CLASSES = ("apples", "bananas")
UNREACHABLE = "http://127.0.0.1:9/never-used"  # discard port: any request would fail


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files, counts GETs per path, and can be slowed down to force overlap."""

    def do_GET(self):
        with self.server.hits_lock:
            self.server.hits[self.path] += 1
        time.sleep(self.server.delay)
        super().do_GET()

    def log_message(self, format, *args):  # keep pytest output clean
        pass


class _Server:
    def __init__(self, root: Path):
        self.root = root
        handler = functools.partial(_CountingHandler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.hits = Counter()
        self.httpd.hits_lock = threading.Lock()
        self.httpd.delay = 0.0
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def hits(self) -> Counter:
        return self.httpd.hits

    def url(self, rel: str) -> str:
        return f"{self.base}/{rel}"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A local file server in a daemon thread; proxies are disabled so urllib talks to it."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.delenv("FARM_DATA_DIR", raising=False)
    monkeypatch.delenv("FARM_CACHE_DIR", raising=False)
    root = tmp_path / "www"
    root.mkdir()
    srv = _Server(root)
    thread = threading.Thread(target=srv.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join(5)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def _table(*mirrors: Mirror, name: str = "german_credit") -> DatasetSource:
    return DatasetSource(name=name, kind="table", filename=f"{name}.arff", target="class",
                         mirrors=mirrors)


def _images(*mirrors: Mirror) -> DatasetSource:
    return DatasetSource(name="fids30", kind="image_folder", filename=".", mirrors=mirrors)


def _serve_german(server, shared_data, rel="credit-g.arff") -> str:
    dest = server.root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared_data / "german_credit" / "german_credit.arff", dest)
    return server.url(rel)


def _leftovers(cache: Path) -> list[str]:
    """Every file under the cache except lock files, plus any temp/extract folder."""
    found = []
    if cache.exists():
        for p in cache.rglob("*"):
            if (p.is_file() and p.suffix != ".lock") or p.name.endswith((".part", ".extract")):
                found.append(str(p.relative_to(cache)))
    return sorted(found)


def _images_in(shared_data: Path) -> dict[str, list[str]]:
    """Three real images from each of two classes (the shared copy lacks a few numbers)."""
    return {c: sorted(p.name for p in (shared_data / "fids30" / c).glob("*.jpg"))[:3]
            for c in CLASSES}


def _make_zip(path: Path, shared_data: Path, extra: dict[str, bytes] | None = None,
              symlink: str | None = None) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for cls, files in _images_in(shared_data).items():
            for f in files:
                zf.write(shared_data / "fids30" / cls / f, f"FIDS30/{cls}/{f}")
        for member, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(member), data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")


# --- local copies: no network -------------------------------------------------------------

def test_data_dir_hit_uses_shared_copy_without_network(shared_data, tmp_path, monkeypatch):
    monkeypatch.delenv("FARM_DATA_DIR", raising=False)
    cache = tmp_path / "cache"
    dead = _table(Mirror(UNREACHABLE))
    got = resolve_dataset("german_credit", shared_data, cache, source=dead)
    assert got == shared_data / "german_credit" / "german_credit.arff"
    # registry entries resolve against the shared layout as is (real URLs are never touched)
    diabetes = resolve_dataset("diabetes", shared_data, cache)
    assert diabetes == shared_data / "diabetes" / "diabetes.arff"
    assert resolve_dataset("fids30", str(shared_data), cache) == shared_data / "fids30"
    assert not cache.exists()


def test_env_data_dir(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("FARM_DATA_DIR", str(shared_data))
    got = resolve_dataset("german_credit", cache_dir=tmp_path / "cache",
                          source=_table(Mirror(UNREACHABLE)))
    assert got == shared_data / "german_credit" / "german_credit.arff"


def test_unknown_dataset_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'; known: .*german_credit"):
        resolve_dataset("nope", tmp_path, tmp_path / "cache")


def test_registry_matches_shared_checksums(shared_data):
    for name in ("german_credit", "diabetes"):
        src = get_source(name)
        data = (shared_data / name / src.filename).read_bytes()
        assert src.mirrors[0].sha256 == hashlib.sha256(data).hexdigest()
        assert src.target == "class"
    assert get_source("fids30").mirrors[0].archive_subdir == "FIDS30"


# --- downloads ------------------------------------------------------------------------------

def test_download_verified_then_cache_hit(server, shared_data, cache, capsys):
    url = _serve_german(server, shared_data)
    src = _table(Mirror(url, GERMAN_SHA))
    got = resolve_dataset("german_credit", cache_dir=cache, source=src)
    assert got == cache / "german_credit" / "german_credit.arff"
    assert got.read_bytes() == (shared_data / "german_credit" / "german_credit.arff").read_bytes()
    err = capsys.readouterr().err
    assert "downloading" in err and "%" in err and "warning" not in err
    assert sum(server.hits.values()) == 1

    again = resolve_dataset("german_credit", cache_dir=cache, source=src, progress=False)
    assert again == got
    assert sum(server.hits.values()) == 1  # served from the cache
    assert capsys.readouterr().err == ""
    assert _leftovers(cache) == ["german_credit/german_credit.arff"]


def test_env_cache_dir_and_missing_data_dir_fall_through(server, shared_data, tmp_path,
                                                          monkeypatch):
    url = _serve_german(server, shared_data)
    monkeypatch.setenv("FARM_CACHE_DIR", str(tmp_path / "envcache"))
    got = resolve_dataset("german_credit", tmp_path / "empty",
                          source=_table(Mirror(url, GERMAN_SHA)), progress=False)
    assert got == tmp_path / "envcache" / "german_credit" / "german_credit.arff"


def test_wrong_sha256_leaves_nothing(server, shared_data, cache):
    url = _serve_german(server, shared_data)
    with pytest.raises(DownloadError, match="sha256 mismatch: expected 0{64}, got " + GERMAN_SHA):
        resolve_dataset("german_credit", cache_dir=cache, source=_table(Mirror(url, "0" * 64)),
                        progress=False)
    assert not (cache / "german_credit" / "german_credit.arff").exists()
    assert _leftovers(cache) == []


def test_first_mirror_404_second_works(server, shared_data, cache, capsys):
    url = _serve_german(server, shared_data, "openml/credit-g.arff")
    src = _table(Mirror(server.url("missing.arff"), GERMAN_SHA), Mirror(url))
    got = resolve_dataset("german_credit", cache_dir=cache, source=src, progress=False)
    assert got.read_bytes() == (shared_data / "german_credit" / "german_credit.arff").read_bytes()
    assert server.hits["/missing.arff"] == 1 and server.hits["/openml/credit-g.arff"] == 1
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "could not be verified" in warnings[0]


def test_all_mirrors_fail_one_line(server, cache):
    bad1, bad2 = server.url("a/missing.arff"), server.url("b/missing.arff")
    with pytest.raises(DownloadError) as info:
        resolve_dataset("german_credit", cache_dir=cache, source=_table(Mirror(bad1), Mirror(bad2)),
                        progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    # "HTTP 404", not "404": the port may hold it
    assert bad1 in msg and bad2 in msg and msg.count("HTTP 404") == 2
    assert _leftovers(cache) == [] and not (cache / "german_credit").exists()


def test_zip_download_extracts_class_folders(server, shared_data, cache):
    _make_zip(server.root / "FIDS30.zip", shared_data, extra={"FIDS30/fruits.txt": b"apples\n"})
    src = _images(Mirror(server.url("FIDS30.zip"), archive="zip", archive_subdir="FIDS30"))
    got = resolve_dataset("fids30", cache_dir=cache, source=src, progress=False)
    assert got == cache / "fids30"
    assert sorted(p.name for p in got.iterdir() if p.is_dir()) == sorted(CLASSES)
    for cls, files in _images_in(shared_data).items():
        for f in files:
            assert (got / cls / f).read_bytes() == (shared_data / "fids30" / cls / f).read_bytes()
    assert not any(p.name.endswith((".part", ".extract")) for p in cache.iterdir())
    assert resolve_dataset("fids30", cache_dir=cache, source=src, progress=False) == got
    assert server.hits["/FIDS30.zip"] == 1


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs.txt", "FIDS30/../../evil.txt", "symlink"])
def test_zip_slip_is_refused(server, shared_data, tmp_path, cache, evil):
    if evil == "symlink":
        _make_zip(server.root / "FIDS30.zip", shared_data, symlink="FIDS30/apples/link.jpg")
        member = "FIDS30/apples/link.jpg"
    else:
        _make_zip(server.root / "FIDS30.zip", shared_data, extra={evil: b"pwned"})
        member = evil
    src = _images(Mirror(server.url("FIDS30.zip"), archive="zip", archive_subdir="FIDS30"))
    with pytest.raises(DownloadError) as info:
        resolve_dataset("fids30", cache_dir=cache, source=src, progress=False)
    assert repr(member) in str(info.value) and "FIDS30.zip" in str(info.value)
    assert not (cache / "fids30").exists()
    assert _leftovers(cache) == []
    assert not (tmp_path / "evil.txt").exists() and not (cache / "evil.txt").exists()
    assert not Path("/abs.txt").exists()


def test_safe_extract_zip_refuses_before_writing(shared_data, tmp_path):
    archive = tmp_path / "a.zip"
    _make_zip(archive, shared_data, extra={"z/../../evil.txt": b"x"})
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(DownloadError, match="refusing zip member 'z/../../evil.txt'"):
        safe_extract_zip(archive, dest)
    assert list(dest.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


def test_not_a_zip_is_a_download_error(server, cache):
    (server.root / "FIDS30.zip").write_bytes(b"this is not a zip")
    src = _images(Mirror(server.url("FIDS30.zip"), archive="zip", archive_subdir="FIDS30"))
    with pytest.raises(DownloadError, match="not a valid zip archive"):
        resolve_dataset("fids30", cache_dir=cache, source=src, progress=False)
    assert _leftovers(cache) == []


def test_concurrent_calls_download_once(server, shared_data, cache):
    url = _serve_german(server, shared_data)
    server.httpd.delay = 0.3  # keep the first download in flight while the second one starts
    src = _table(Mirror(url, GERMAN_SHA))
    start = threading.Barrier(2)

    def call():
        start.wait()
        return resolve_dataset("german_credit", cache_dir=cache, source=src, progress=False)

    with ThreadPoolExecutor(2) as pool:
        results = [f.result() for f in [pool.submit(call) for _ in range(2)]]
    assert results[0] == results[1] == cache / "german_credit" / "german_credit.arff"
    assert sum(server.hits.values()) == 1
    assert _leftovers(cache) == ["german_credit/german_credit.arff"]
