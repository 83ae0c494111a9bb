"""Fixtures for the shm tests: real directories on the machine's tmpfs."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SHM_ROOT = Path("/dev/shm")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A fresh directory on /dev/shm (tmpfs), removed afterwards; the publisher creates it."""
    parent = Path(tempfile.mkdtemp(prefix="shm-test-", dir=SHM_ROOT))
    try:
        yield parent / "window"
    finally:
        shutil.rmtree(parent, ignore_errors=True)
