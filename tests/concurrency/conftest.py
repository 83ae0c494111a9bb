"""Fixtures for the concurrency and fault scenarios (real Gunicorn, daemon, Kafka, S3)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.concurrency._checks import SESSION
from tests.webapp._support import train_artifact


@pytest.fixture(scope="session")
def artifact() -> bytes:
    """A trained model artifact (skops bytes), shared by the scenarios."""
    return train_artifact()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What each scenario checked and how much failed (also in reports/concurrency.jsonl)."""
    if SESSION:
        terminalreporter.section("concurrency figures")
        for line in SESSION:
            terminalreporter.write_line(line)


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A fresh directory on /dev/shm, removed afterwards (the publisher creates it)."""
    parent = Path(tempfile.mkdtemp(prefix="conc-test-", dir="/dev/shm"))
    try:
        yield parent / "window"
    finally:
        shutil.rmtree(parent, ignore_errors=True)
