"""Shared fixtures: where the project's real datasets live (../shared/data, read-only)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Decoded-image caches and downloads go to a throwaway folder, never the user's ~/.cache.
os.environ.setdefault("FARM_CACHE_DIR", tempfile.mkdtemp(prefix="farm-test-cache-"))


def _shared_data() -> Path:
    path = Path(os.environ.get("FARM_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not (path / "german_credit" / "german_credit.arff").is_file():
        raise RuntimeError(f"{path}: shared datasets not found (set FARM_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only real datasets; copy into tmp_path before modifying anything."""
    return _shared_data()
