"""Fixtures for the webapp tests: a trained artifact, a real shm window, the Flask app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.webapp._support import ShmWindow, shm_window, train_artifact
from webapp import Settings, create_app


@pytest.fixture(scope="session")
def artifact() -> bytes:
    return train_artifact()


@pytest.fixture
def window(artifact: bytes) -> Iterator[ShmWindow]:
    """An shm directory with the model installed and nothing published yet."""
    with shm_window(artifact) as win:
        yield win


def make_app(window: ShmWindow, **env: str) -> Flask:
    return create_app(Settings.from_env({"SHM_DIR": str(window.directory), **env}))
