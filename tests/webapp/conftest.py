"""Fixtures for the webapp tests: a trained artifact, a real shm window, the Flask app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.webapp._support import ShmWindow, new_shm_window, remove_tree, train_artifact
from webapp import Settings, create_app


@pytest.fixture(scope="session")
def artifact() -> bytes:
    return train_artifact()


@pytest.fixture
def window(artifact: bytes) -> Iterator[ShmWindow]:
    """An shm directory with the model installed and nothing published yet."""
    win, parent = new_shm_window(artifact)
    try:
        yield win
    finally:
        win.close()
        remove_tree(parent)


def make_app(window: ShmWindow, **env: str) -> Flask:
    return create_app(Settings.from_env({"SHM_DIR": str(window.directory), **env}))
