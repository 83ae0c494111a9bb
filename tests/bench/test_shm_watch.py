"""bench._shm_watch: a process of its own records each generation as it appears."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from bench._shm_watch import ShmWatch
from shm import Publisher
from shm._layout import parse_generation


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    parent = Path(tempfile.mkdtemp(prefix="shm-watch-test-", dir="/dev/shm"))
    try:
        yield parent / "window"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def _table(newest_ns: int) -> pa.Table:
    times = pa.array([newest_ns - 1_000, newest_ns], pa.timestamp("ns", tz="UTC"))
    return pa.table({"time": times, "demand_mw": [1.0, 2.0]})


def _renames_timed(monkeypatch: pytest.MonkeyPatch) -> dict[int, float]:
    """Each generation file's rename, as the instant just before the call that makes it."""
    before: dict[int, float] = {}
    replace = os.replace

    def timed(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        generation = parse_generation(Path(dst).name)
        if generation is not None:
            before[generation] = time.monotonic()
        replace(src, dst)

    monkeypatch.setattr(os, "replace", timed)
    return before


def test_each_generation_is_recorded_and_never_before_its_rename(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renamed = _renames_timed(monkeypatch)
    publisher = Publisher(shm_dir)
    newest_of: dict[int, int] = {}
    try:
        publisher.publish(_table(1_000_000))  # there before the watch: not recorded
        with ShmWatch(shm_dir) as watch:
            for newest in (2_000_000, 3_000_000, 4_000_000):
                newest_of[newest] = publisher.publish(_table(newest))
                time.sleep(0.5)
    finally:
        publisher.close()
    assert [newest for _, newest in watch.seen] == [2_000_000, 3_000_000, 4_000_000]
    for at, newest in watch.seen:
        assert renamed[newest_of[newest]] <= at


def test_back_to_back_generations_are_never_recorded_early(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renames faster than the watch reads: it may skip some generations, and those it
    # records may have been renamed after it woke; no instant may precede its rename.
    renamed = _renames_timed(monkeypatch)
    publisher = Publisher(shm_dir, keep=1000)
    newest_of: dict[int, int] = {}
    try:
        with ShmWatch(shm_dir) as watch:
            for n in range(1, 301):
                newest_of[n * 1_000] = publisher.publish(_table(n * 1_000))
    finally:
        publisher.close()
    assert watch.seen and watch.seen[-1][1] == 300_000  # the last look at stop has the last
    newest = [n for _, n in watch.seen]
    assert newest == sorted(set(newest))
    for at, n in watch.seen:
        assert renamed[newest_of[n]] <= at
