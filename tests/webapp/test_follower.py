"""A worker's follower prepares a new generation as soon as it is published (a rename into
the shm directory wakes it), not an interval later."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import webapp.follower as follower_module
import webapp.worker_state as worker_state_module
from tests.webapp._support import ShmWindow
from tests.webapp.conftest import make_app
from webapp.follower import DirectoryRenames, Follower
from webapp.worker_state import WorkerState

# Far longer than any wait below: only a rename can explain a prompt poll.
INTERVAL_S = 30.0


def _until(check: object, timeout: float) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.002)
    return time.monotonic() - started


def test_renames_into_the_directory_are_seen_and_consumed(tmp_path: Path) -> None:
    assert DirectoryRenames.watch(tmp_path / "absent") is None
    renames = DirectoryRenames.watch(tmp_path)
    assert renames is not None
    try:
        assert renames.wait(0.05) is False
        (tmp_path / "other").write_bytes(b"x")  # created in place: not a publication
        assert renames.wait(0.05) is False
        for n in range(3):
            (tmp_path / f"tmp{n}").write_bytes(b"x")
            os.replace(tmp_path / f"tmp{n}", tmp_path / f"file{n}")
        assert renames.wait(5.0) is True
        assert renames.wait(0.05) is False  # all three were consumed at once
    finally:
        renames.close()


def test_renamed_names_each_file_renamed_in_and_only_those(tmp_path: Path) -> None:
    renames = DirectoryRenames.watch(tmp_path)
    assert renames is not None
    try:
        assert renames.renamed(0.05) is None
        (tmp_path / "created-in-place").write_bytes(b"x")
        names = [f"gen-{n:020d}.arrow" for n in range(3)] + ["a name with spaces é"]
        for name in names:
            (tmp_path / "tmp").write_bytes(b"x")
            os.replace(tmp_path / "tmp", tmp_path / name)
        assert renames.renamed(5.0) == names
        assert renames.renamed(0.05) is None
    finally:
        renames.close()


@contextlib.contextmanager
def _following(window: ShmWindow) -> Iterator[tuple[WorkerState, Follower, FlaskClient]]:
    """A worker's state on ``window`` (one generation published), its follower running (with
    a 30 s interval, so only a rename can explain a prompt poll) and a client of its app;
    the follower stopped and joined after."""
    window.publish(1000)
    window.write_status()
    app = make_app(window)
    state: WorkerState = app.extensions["webapp"]
    follower = Follower(state, INTERVAL_S)
    follower.poll()
    follower.start()
    try:
        _until(lambda: follower.watching, 5.0)
        yield state, follower, app.test_client()
    finally:
        follower.stop()
        window.publish(1000)  # wakes the follower, which sees it is stopped
        assert follower._thread is not None
        follower._thread.join(5.0)
        assert not follower._thread.is_alive()


def _predict(client: FlaskClient, generation: int) -> None:
    reply = client.post("/predict", data=b"{}", content_type="application/json")
    assert reply.status_code == 200, reply.data
    assert reply.json is not None and reply.json["generation"] == generation


def _publish(window: ShmWindow, follower: Follower, end: int) -> int:
    """Publish a generation and wait until the follower reported it (woken by the rename)."""
    generation = window.publish(1000, end=end)
    _until(lambda: follower.reported == generation, 5.0)
    return generation


def test_the_follower_prepares_each_publication_at_once(window: ShmWindow) -> None:
    with _following(window) as (state, follower, client):
        for n in range(3):
            generation = _publish(window, follower, 2000 + n)
            misses = state.forecasts.misses
            _predict(client, generation)
            # The forecast of the new generation was ready before the request.
            assert state.forecasts.misses == misses


def test_an_idle_worker_leaves_the_forecast_to_the_first_request_for_it(
    window: ShmWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``FORECAST_DEMAND_S`` without a ``/predict``, the follower prepares a new
    generation but not its forecast; the request computes it, and from then on the follower
    forecasts each new generation ahead again."""
    monkeypatch.setattr(worker_state_module, "FORECAST_DEMAND_S", 0.3)
    with _following(window) as (state, follower, client):
        time.sleep(0.4)
        assert not state.forecasts_in_demand()
        generation = _publish(window, follower, 2000)
        misses = state.forecasts.misses
        _predict(client, generation)
        assert state.forecasts.misses == misses + 1  # not prepared: the request forecast it
        assert state.forecasts_in_demand()
        generation = _publish(window, follower, 2001)
        misses = state.forecasts.misses
        _predict(client, generation)
        assert state.forecasts.misses == misses  # prepared by the follower again


def test_a_watch_ends_with_its_directory(tmp_path: Path) -> None:
    directory = tmp_path / "shm"
    directory.mkdir()
    renames = DirectoryRenames.watch(directory)
    assert renames is not None
    try:
        (directory / "tmp").write_bytes(b"x")
        os.replace(directory / "tmp", directory / "file")
        assert renames.wait(5.0) is True
        assert renames.ended is False  # a rename into it does not end it
        os.replace(directory, tmp_path / "moved")
        assert renames.renamed(5.0) == []  # the end arrived, and no file was renamed in
        assert renames.ended is True
    finally:
        renames.close()


def test_the_follower_watches_a_replaced_directory_again(
    window: ShmWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator or a restarted pod may remove and make the shm directory again: the old
    watch ends with the old directory and the follower watches the new one. Its interval is
    50 ms (it polls while no directory is there) and a watched follower's safety poll 30 s
    here, so only the new watch can report the new directory's first publication in time."""
    monkeypatch.setattr(follower_module, "WATCHED_POLL_S", 30.0)
    window.publish(1000)
    window.write_status()
    app = make_app(window)
    state: WorkerState = app.extensions["webapp"]
    follower = Follower(state, 0.05)
    follower.start()
    directory = window.directory
    try:
        _until(lambda: follower.watching, 5.0)
        before = window.publish(1000, end=2000)
        _until(lambda: follower.reported == before, 5.0)
        window.close()
        os.replace(directory, directory.with_name("old"))
        directory.mkdir()
        window = ShmWindow(directory, window.artifact)
        _until(lambda: follower.watches == 2, 5.0)
        generation = window.publish(1000, end=3000)
        _until(lambda: follower.reported == generation, 5.0)
    finally:
        follower.stop()
        window.publish(1000)
        window.close()
        assert follower._thread is not None
        follower._thread.join(5.0)
        assert not follower._thread.is_alive()
