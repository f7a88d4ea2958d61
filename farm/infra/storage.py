"""Where an experiment lives: a folder (local, or NFS mounted on every node) or a URI that pyarrow
opens (`s3://bucket/prefix`, `gs://...`, with its query options such as `endpoint_override`).

Tune's trials and the evaluator's workers write straight to that place from whichever node runs
them. The driver's own files (split manifests, judge, synthetic data, figures, summary, report)
are written to a folder on the driver's machine: the experiment folder itself, or, for a URI, a
local mirror that is copied up after preparing and at the end, and pulled back by `--resume`
and `--report-only` (on any machine). Reading trials back pulls only what the driver needs:
each trial's small files and its best checkpoint, never every checkpoint.

A remote copy cannot be renamed into place like a folder, so `summary.json` goes up last: an
experiment whose remote `summary.json` exists is complete.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from farm.infra.errors import ConfigError, StorageError

# Written by Ray from any node, straight to the experiment's home: Tune's trials, the
# evaluator's Ray Train runs. Everything else is the driver's.
RAYS = ("tune/", "evaluator/evaluator-")
LAST = "summary.json"
SECRET_OPTIONS = {"access_key", "secret_key", "session_token"}
MIRROR_ENV = "FARM_MIRROR"  # where the driver keeps its copy of remote experiments


def is_uri(storage: str) -> bool:
    return "://" in storage


def join(location: str, *parts: str) -> str:
    """`parts` appended to a folder's path or a URI's (its query, pyarrow's options, kept)."""
    if not is_uri(location):
        return str(Path(location, *parts))
    s = urlsplit(location)
    path = "/".join([s.path.rstrip("/"), *parts])
    return urlunsplit((s.scheme, s.netloc, path, s.query, ""))


def parent(uri: str) -> str:
    """A URI one path level up, its query kept: the `--storage-path` of an experiment's home."""
    s = urlsplit(uri)
    return urlunsplit((s.scheme, s.netloc, s.path.rstrip("/").rpartition("/")[0], s.query, ""))


def _check_uri(uri: str) -> None:
    s = urlsplit(uri)
    if "@" in s.netloc or SECRET_OPTIONS & {k for k, _ in parse_qsl(s.query)}:
        raise ConfigError(f"--storage-path {_public(uri)}: credentials in the URI would be "
                          "written into the experiment's files; give them through the "
                          "environment (AWS_ACCESS_KEY_ID, ...) or the nodes' instance role")
    if not s.netloc:
        raise ConfigError(f"--storage-path {uri!r}: name a bucket, e.g. s3://bucket/prefix")


def _is_rays(relative: str) -> bool:
    return relative.startswith(RAYS)


def remove(location: str) -> None:
    """Delete a folder given as a path or a URI (a rerun's Ray Train run starts afresh)."""
    if not is_uri(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    import pyarrow.fs

    fs, path = pyarrow.fs.FileSystem.from_uri(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def write_problem(uri: str, name: str) -> str | None:
    """None when a small file `name` can be written at `uri` and deleted again, else why not.
    (Run on every node of a cluster too: their credentials may differ from the driver's.)"""
    import pyarrow.fs

    try:
        fs, root = pyarrow.fs.FileSystem.from_uri(uri)
        with fs.open_output_stream(f"{root}/{name}") as out:
            out.write(b"gan-farm")
        fs.delete_file(f"{root}/{name}")
    except (OSError, ValueError) as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _public(uri: str) -> str:
    """The URI without user info or secret options, for messages."""
    s = urlsplit(uri)
    query = "&".join(f"{k}={v}" for k, v in parse_qsl(s.query) if k not in SECRET_OPTIONS)
    return urlunsplit((s.scheme, s.netloc.rpartition("@")[2], s.path, query, ""))


@dataclass(frozen=True)
class Store:
    """One experiment's home (`uri`, None for a folder) and the driver's folder for it."""

    folder: Path
    uri: str | None = None

    @classmethod
    def open(cls, storage: str, name: str) -> "Store":
        if not is_uri(storage):
            return cls(Path(storage).expanduser().resolve() / name)
        _check_uri(storage)
        s = urlsplit(storage)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{s.scheme}_{s.netloc}{s.path}").strip("_")
        mirror = Path(os.environ.get(MIRROR_ENV, "~/.cache/gan-farm/mirror")).expanduser()
        return cls(mirror.resolve() / slug / name, join(storage, name))

    @property
    def remote(self) -> bool:
        return self.uri is not None

    @property
    def public(self) -> str:
        """The home for messages (a URI without user info or secret options)."""
        return _public(self.uri) if self.remote else str(self.folder)

    @property
    def home(self) -> str:
        """Where the experiment lives, as a person would type it."""
        return self.uri if self.remote else str(self.folder)

    def location(self, *parts: str) -> str:
        """A `storage_path` for Tune or Ray Train: the home's sub-path `parts`."""
        return join(self.uri, *parts) if self.remote else str(self.folder.joinpath(*parts))

    def _fs(self):
        import pyarrow.fs

        try:
            return pyarrow.fs.FileSystem.from_uri(self.uri)
        except (pyarrow.ArrowInvalid, OSError) as exc:
            raise StorageError(f"--storage-path {self.public}: {exc}") from None

    def _remote_files(self, fs, root: str) -> dict[str, object]:
        """{relative path: FileInfo} of every file under `root`, or {} when there is none."""
        import pyarrow.fs

        try:
            infos = fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True,
                                                             allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"cannot list the experiment's files ({exc})",
                              where=self.public) from None
        return {i.path[len(root) + 1:]: i for i in infos if i.type == pyarrow.fs.FileType.File}

    def exists(self, relative: str) -> bool:
        if not self.remote:
            return (self.folder / relative).exists()
        import pyarrow.fs

        fs, root = self._fs()
        try:
            return fs.get_file_info(f"{root}/{relative}").type != pyarrow.fs.FileType.NotFound
        except OSError as exc:
            raise StorageError(f"cannot reach the experiment's storage ({exc})",
                              where=self.public) from None

    def check_writable(self) -> None:
        """Write and delete a marker, so a missing bucket or a read-only credential is one line
        before any data is prepared, not an error after the judge has trained."""
        if self.remote and (problem := write_problem(self.uri, ".farm-write-test")):
            raise StorageError(f"cannot write there ({problem})", where=self.public)

    def _driver_files(self) -> list[str]:
        """The driver's files in its folder, relative and POSIX, `summary.json` last."""
        files = sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*")
                       if p.is_file() and not _is_rays(p.relative_to(self.folder).as_posix()))
        return sorted(files, key=lambda f: f == LAST)

    def push(self) -> None:
        """Copy the driver's folder up; remote driver files it no longer has are removed (a
        rewritten pool leaves no stale images). Ray's own folders are not touched."""
        if not self.remote:
            return
        import pyarrow.fs

        fs, root = self._fs()
        local = pyarrow.fs.LocalFileSystem()
        mine = self._driver_files()
        stale = set(self._remote_files(fs, root)) - set(mine)
        stale = sorted(f for f in stale if not _is_rays(f))
        try:
            for relative in mine:
                pyarrow.fs.copy_files(str(self.folder / relative), f"{root}/{relative}",
                                      source_filesystem=local, destination_filesystem=fs)
            for relative in stale:
                fs.delete_file(f"{root}/{relative}")
        except OSError as exc:
            raise StorageError(f"cannot write the experiment's files ({exc})",
                              where=self.public) from None

    def pull(self) -> None:
        """Replace the driver's folder with the remote driver files (for --resume and
        --report-only, on this machine or another)."""
        if not self.remote:
            return
        import pyarrow.fs

        fs, root = self._fs()
        remote = [f for f in self._remote_files(fs, root) if not _is_rays(f)]
        self.clear()
        try:
            for relative in remote:
                target = self.folder / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                pyarrow.fs.copy_files(f"{root}/{relative}", str(target), source_filesystem=fs,
                                      destination_filesystem=pyarrow.fs.LocalFileSystem())
        except OSError as exc:
            self.clear()
            raise StorageError(f"cannot read the experiment's files ({exc})",
                               where=self.public) from None

    def pull_files(self, relatives: list[str]) -> None:
        """Copy a few files of a remote experiment into the driver's folder, at the same
        relative places (a reader such as `sample` needs a summary and one checkpoint, not
        every pool and report); a file that is not there is one line naming it."""
        if not self.remote:
            return
        import pyarrow.fs

        fs, root = self._fs()
        local = pyarrow.fs.LocalFileSystem()
        for relative in relatives:
            try:
                if fs.get_file_info(f"{root}/{relative}").type != pyarrow.fs.FileType.File:
                    raise StorageError(f"no {relative} there", where=self.public)
                (self.folder / relative).parent.mkdir(parents=True, exist_ok=True)
                pyarrow.fs.copy_files(f"{root}/{relative}", str(self.folder / relative),
                                      source_filesystem=fs, destination_filesystem=local)
            except OSError as exc:
                raise StorageError(f"cannot read {relative} ({exc})", where=self.public) \
                    from None

    def clear(self) -> None:
        """Empty the driver's folder of a remote experiment (it is only a copy)."""
        if self.remote:
            shutil.rmtree(self.folder, ignore_errors=True)

    def fetch_trial(self, trial_path: str, filesystem, checkpoint_path: str | None) \
            -> tuple[str, str | None]:
        """A trial's small files (progress, TensorBoard events, pictures) and one checkpoint
        from wherever Tune stored them into the driver's folder, at the same relative place;
        (trial folder, checkpoint folder) there. Local trials are read where they are."""
        if not self.remote:
            return trial_path, checkpoint_path
        import pyarrow.fs

        target = self.folder / "tune" / Path(trial_path).name
        shutil.rmtree(target, ignore_errors=True)
        local = pyarrow.fs.LocalFileSystem()
        keep = Path(checkpoint_path).name if checkpoint_path else None
        try:
            infos = filesystem.get_file_info(pyarrow.fs.FileSelector(trial_path, recursive=True))
            for info in infos:
                relative = info.path[len(trial_path.rstrip("/")) + 1:]
                top = relative.split("/")[0]
                if info.type != pyarrow.fs.FileType.File or \
                        (top.startswith("checkpoint_") and top != keep) or top == "pbt_donor":
                    continue
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                pyarrow.fs.copy_files(info.path, str(target / relative),
                                      source_filesystem=filesystem, destination_filesystem=local)
        except OSError as exc:
            raise StorageError(f"cannot read trial {Path(trial_path).name} ({exc})",
                               where=self.public) from None
        return str(target), (str(target / keep) if keep else None)

    def disk_bytes(self) -> int:
        """The experiment's size where it lives: every checkpoint Tune kept, and the rest
        (for a remote home, the driver's files as they will be once pushed)."""
        if not self.remote:
            return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())
        fs, root = self._fs()
        rays = sum(i.size for f, i in self._remote_files(fs, root).items()
                   if _is_rays(f))
        return rays + sum((self.folder / f).stat().st_size for f in self._driver_files())


def experiment_store(storage_path: str, name: str) -> Store:
    """The Store of experiment `name` (`--name`) under `storage_path` (`--storage-path`)."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ConfigError(f"--name {name!r}: use letters, digits, '-', '_' and '.' only")
    return Store.open(storage_path, name)
