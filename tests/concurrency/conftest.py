"""Fixtures for the concurrency and fault scenarios (real Gunicorn, daemon, Kafka, S3)."""

from __future__ import annotations

import pytest

from tests.webapp._support import train_artifact


@pytest.fixture(scope="session")
def artifact() -> bytes:
    """A trained model artifact (skops bytes), shared by the scenarios."""
    return train_artifact()
