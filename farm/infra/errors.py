"""Errors a user can fix.

Every problem with the user's input (a path, a file's contents, a config key) is raised as a
`FarmError` naming the file and the problem. `run_farm.py` prints it as one line and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os


class FarmError(Exception):
    """A problem with the user's input, reported as ``<where>: <problem>``."""

    exit_code = 2

    def __init__(self, problem: str, where: str | os.PathLike | None = None):
        self.problem = problem
        self.where = None if where is None else str(where)
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}" if self.where else self.problem


class DataError(FarmError):
    """A dataset is missing, unreadable or malformed."""


class DownloadError(DataError):
    """A public dataset could not be fetched or failed its checksum."""


class ConfigError(FarmError):
    """A trials/*.yaml file or a command-line flag asks for something impossible."""


class StorageError(FarmError):
    """The experiment's storage (a folder or a bucket) cannot be reached, read or written."""


class GeneratorFileError(FarmError):
    """A file given as a generator file is missing, foreign, damaged or of another version."""


def settings_from(cls, values: dict | None, section: str):
    """Build a settings dataclass from a YAML mapping, naming an unknown key and the section
    it sits in (`data.images.judge`, `evaluator`) rather than failing with a TypeError."""
    import dataclasses

    values = dict(values or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {section}; known: "
                          f"{', '.join(sorted(fields))}")
    return cls(**values)
