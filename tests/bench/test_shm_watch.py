"""bench._shm_watch: a process of its own records each generation as it appears."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from bench._shm_watch import ShmWatch
from shm import Publisher


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


def test_each_generation_is_recorded_after_its_publication(shm_dir: Path) -> None:
    publisher = Publisher(shm_dir)
    started: list[float] = []
    try:
        publisher.publish(_table(1_000_000))  # there before the watch: not recorded
        with ShmWatch(shm_dir) as watch:
            for newest in (2_000_000, 3_000_000, 4_000_000):
                started.append(time.monotonic())
                publisher.publish(_table(newest))
                time.sleep(0.5)
            started.append(time.monotonic())
    finally:
        publisher.close()
    assert [newest for _, newest in watch.seen] == [2_000_000, 3_000_000, 4_000_000]
    # Each instant lies after its publication began: never early. (The last one may be
    # recorded by the watch's final look at stop, so later ones are not bounded here.)
    for (at, _), begun in zip(watch.seen, started, strict=False):
        assert begun <= at
