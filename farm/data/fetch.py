"""Find a dataset on disk, or download it once into a cache, safely.

Lookup order: the user's data folder (`data_dir` / `$FARM_DATA_DIR`), then the cache
(`cache_dir` / `$FARM_CACHE_DIR` / `~/.cache/gan-farm`), then the mirrors of the dataset's
`DatasetSource`, tried in order. Downloads go to a temp file next to the target and are moved
into place with one atomic rename, so a crash or a bad checksum never leaves a half-written
dataset at the final path, and a file lock keeps parallel trials from downloading twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import filelock

from farm import __version__
from farm.data.registry import DatasetSource, Mirror, get_source
from farm.infra.errors import DataError, DownloadError

TIMEOUT_S = 60.0  # per socket operation, not for the whole download
CHUNK = 1 << 16
UNKNOWN_SIZE_STEP = 5 << 20  # progress line every 5 MB when the server sends no length
USER_AGENT = f"gan-farm/{__version__} (+python-urllib)"
DEFAULT_CACHE = "~/.cache/gan-farm"

# What one failing mirror may raise; anything else is a bug and propagates.
_MIRROR_ERRORS = (OSError, http.client.HTTPException, zipfile.BadZipFile, DownloadError, ValueError)


def resolve_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    source: DatasetSource | None = None,
    progress: bool = True,
) -> Path:
    """Return the dataset's file (tables) or class-folder root (images), downloading if needed.

    `source` overrides the registry entry (tests point it at a local server); the folder
    name under the data/cache root is always `name`.
    """
    source = source if source is not None else get_source(name)
    local_root = _data_root(data_dir)
    if local_root is not None:
        local = dataset_path(local_root, name, source)
        if _present(local, source):
            return local  # the user's own copy: trusted as is, no checksum
        _say(progress, f"{name}: not found at {local}; trying the cache")
    cache = _cache_root(cache_dir)
    final = dataset_path(cache, name, source)
    if _present(final, source):
        return final
    return _download_locked(name, source, cache, final, progress)


def dataset_path(root: str | os.PathLike, name: str, source: DatasetSource) -> Path:
    """Where the dataset lives under a data or cache root (`<root>/<name>/<filename>`)."""
    return Path(root).expanduser() / name / source.filename


def _data_root(data_dir: str | os.PathLike | None) -> Path | None:
    """The user's data folder: the argument, else $FARM_DATA_DIR, else none."""
    value = data_dir if data_dir is not None else os.environ.get("FARM_DATA_DIR") or None
    return None if value is None else Path(value).expanduser()


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    """The download cache: the argument, else $FARM_CACHE_DIR, else ~/.cache/gan-farm."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("FARM_CACHE_DIR") or DEFAULT_CACHE).expanduser()


def _present(path: Path, source: DatasetSource) -> bool:
    """A table is a file; an image folder counts only once it holds at least one class folder."""
    if source.kind == "table":
        return path.is_file()
    return path.is_dir() and any(child.is_dir() for child in path.iterdir())


def _mkdir(path: Path) -> None:
    """Create a folder, reporting an unwritable location as a user error, not a traceback."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create folder ({e.strerror or e})", where=path) from e


def _download_locked(name: str, source: DatasetSource, cache: Path, final: Path,
                     progress: bool) -> Path:
    """Hold `<cache>/<name>.lock` while downloading, so parallel processes fetch only once."""
    _mkdir(cache)
    lock = filelock.FileLock(str(cache / f"{name}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _say(progress, f"{name}: waiting for another process to finish downloading it")
        lock.acquire()
    try:
        if _present(final, source):  # the other process finished it while we waited
            return final
        return _try_mirrors(name, source, final, progress)
    finally:
        lock.release()


def _try_mirrors(name: str, source: DatasetSource, final: Path, progress: bool) -> Path:
    """Try each mirror in order; on total failure say, in one line, why each one failed."""
    failures = []
    for mirror in source.mirrors:
        try:
            _fetch_mirror(mirror, source, final, progress)
            return final
        except _MIRROR_ERRORS as e:
            failures.append(f"{mirror.url} ({_reason(e)})")
            _say(progress, f"{name}: {mirror.url} failed: {_reason(e)}")
    with contextlib.suppress(OSError):  # drop the empty <cache>/<name>/ made for temp files
        final.parent.rmdir()
    tried = "; ".join(failures) if failures else "no mirrors are listed"
    raise DownloadError(f"could not download dataset {name!r}: {tried}", where=final)


def _reason(e: BaseException) -> str:
    """A short one-line reason for a mirror failure (the URL is reported next to it)."""
    if isinstance(e, urllib.error.HTTPError):
        text = f"HTTP {e.code} {e.reason}"
    elif isinstance(e, urllib.error.URLError):
        text = str(e.reason)
    elif isinstance(e, DownloadError):
        text = e.problem
    else:
        text = f"{type(e).__name__}: {e}"
    return " ".join(text.split())


def _fetch_mirror(mirror: Mirror, source: DatasetSource, final: Path, progress: bool) -> None:
    """Download one mirror to a temp file beside the target, verify it, then move it in place."""
    _mkdir(final.parent)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _download(mirror.url, out, final.name, progress)
        _check_sha256(mirror, digest)
        if mirror.archive == "zip":
            _install_zip(tmp, mirror, source, final)
        else:
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is ordinary data
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def _download(url: str, out, label: str, progress: bool) -> str:
    """Stream `url` into `out`, hashing as it goes; returns the sha256 hex digest."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        total = _content_length(response)
        meter = _Progress(label, url, total, progress)
        done = 0
        while chunk := response.read(CHUNK):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            meter.update(done)
    if total is not None and done != total:
        raise DownloadError(f"truncated download: got {done} of {total} bytes", where=url)
    meter.finish(done)
    return digest.hexdigest()


def _content_length(response) -> int | None:
    """The announced size, or None when the server does not say (or says nonsense)."""
    value = response.headers.get("Content-Length")
    return int(value) if value is not None and value.strip().isdigit() else None


class _Progress:
    """Prints a line every ~10% (or every 5 MB when the size is unknown) to stderr."""

    def __init__(self, label: str, url: str, total: int | None, enabled: bool):
        self.label, self.total, self.enabled = label, total, enabled
        self.step = max(total // 10, 1) if total else UNKNOWN_SIZE_STEP
        self.next_mark = self.step
        size = f"{total / 1e6:.1f} MB" if total is not None else "size unknown"
        _say(enabled, f"{label}: downloading {url} ({size})")

    def update(self, done: int) -> None:
        """Report once each time `done` crosses the next mark."""
        if done < self.next_mark:
            return
        while self.next_mark <= done:
            self.next_mark += self.step
        if self.total:
            _say(self.enabled, f"{self.label}: {100 * done // self.total:3d}% "
                               f"({done / 1e6:.1f} of {self.total / 1e6:.1f} MB)")
        else:
            _say(self.enabled, f"{self.label}: {done / 1e6:.1f} MB")

    def finish(self, done: int) -> None:
        """With no known size there was no 100% line, so say when it is finished."""
        if not self.total:
            _say(self.enabled, f"{self.label}: done, {done / 1e6:.1f} MB")


def _check_sha256(mirror: Mirror, digest: str) -> None:
    """Reject a corrupt or tampered file; warn once when there is nothing to compare against."""
    if mirror.sha256 is None:
        print(f"warning: {mirror.url}: no known sha256, so the download could not be verified "
              f"(got sha256 {digest})", file=sys.stderr)
        return
    expected = mirror.sha256.lower()
    if digest != expected:
        raise DownloadError(f"sha256 mismatch: expected {expected}, got {digest}", where=mirror.url)


def _install_zip(archive: Path, mirror: Mirror, source: DatasetSource, final: Path) -> None:
    """Extract into a temp folder beside the target, then rename the wanted part into place."""
    scratch = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".extract"))
    try:
        safe_extract_zip(archive, scratch, label=mirror.url)
        wanted = scratch / mirror.archive_subdir if mirror.archive_subdir else scratch
        if source.kind == "table":
            wanted = wanted / source.filename
        if not _present(wanted, source):
            inside = f"{mirror.archive_subdir}/" if mirror.archive_subdir else "the top level"
            what = repr(source.filename) if source.kind == "table" else "any class folder"
            raise DownloadError(f"zip archive has no {what} in {inside}", where=mirror.url)
        os.chmod(wanted, 0o755 if wanted.is_dir() else 0o644)
        os.replace(wanted, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def safe_extract_zip(archive: str | os.PathLike, dest: str | os.PathLike,
                     label: str | None = None) -> None:
    """Extract a zip into `dest` after checking every member, so no member can escape `dest`.

    Refuses (before writing anything) absolute paths, `..` components, paths that resolve
    outside `dest`, and symlinks. `label` names the archive in errors (e.g. its URL).
    """
    label = label or str(archive)
    dest = Path(dest)
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            root = dest.resolve()
            for info in members:
                problem = _unsafe_member(info, root)
                if problem:
                    raise DownloadError(f"refusing zip member {info.filename!r}: {problem}",
                                        where=label)
            zf.extractall(dest, members)
    except zipfile.BadZipFile as e:
        raise DownloadError(f"not a valid zip archive ({e})", where=label) from e


def _unsafe_member(info: zipfile.ZipInfo, root: Path) -> str | None:
    """Why a zip member could write outside `root` (zip-slip), or None if it is safe."""
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "'..' path component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if not (root / name).resolve().is_relative_to(root):
        return "resolves outside the target folder"
    return None


def _say(enabled: bool, line: str) -> None:
    """Progress goes to stderr so stdout stays clean for results."""
    if enabled:
        print(line, file=sys.stderr, flush=True)
