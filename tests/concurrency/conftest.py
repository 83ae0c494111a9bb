"""Fixtures for the concurrency and fault scenarios (real Gunicorn, daemon, Kafka, S3)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.concurrency._checks import REPORT, REPORT_VARIABLE, SESSION
from tests.webapp._support import train_artifact


@pytest.fixture(scope="session")
def artifact() -> bytes:
    """A trained model artifact (skops bytes), shared by the scenarios."""
    return train_artifact()


@pytest.fixture(scope="session", autouse=True)
def figures_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file the scenarios' figures are appended to: ``$CONCURRENCY_REPORT`` (set by
    ``make soak`` and ``make concurrency``), else one in this session's temporary directory."""
    named = os.environ.get(REPORT_VARIABLE)
    path = Path(named) if named else tmp_path_factory.getbasetemp() / "concurrency.jsonl"
    REPORT[:] = [path.resolve()]
    return REPORT[0]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What each scenario checked and how much failed, and the file it was appended to."""
    if SESSION:
        terminalreporter.section("concurrency figures")
        for line in SESSION:
            terminalreporter.write_line(line)
        if REPORT:
            terminalreporter.write_line(f"(appended to {REPORT[0]})")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A fresh directory on /dev/shm, removed afterwards (the publisher creates it)."""
    parent = Path(tempfile.mkdtemp(prefix="conc-test-", dir="/dev/shm"))
    try:
        yield parent / "window"
    finally:
        shutil.rmtree(parent, ignore_errors=True)
