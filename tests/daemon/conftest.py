"""Fixtures for the daemon tests: real directories on tmpfs, a small source for the loop."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from cache_daemon.sources import Health, Record

SHM_ROOT = Path("/dev/shm")


@pytest.fixture
def shm_dir() -> Iterator[Path]:
    """A fresh, not yet existing directory on /dev/shm; removed afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="daemon-test-", dir=SHM_ROOT))
    try:
        yield parent / "window"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


class ListSource:
    """An in-memory :class:`~cache_daemon.sources.Source` for unit tests of the loop.

    ``feed`` queues raw values (with one key) for partition 0; ``poll`` returns them all at
    once.
    """

    kind = "kafka"

    def __init__(self) -> None:
        self.queue: list[Record] = []
        self.next_offset: dict[int, int] = {}
        self.position: dict[int, int] = {}
        self.letters: list[tuple[Record, str]] = []
        self.caught_up = True
        self.closed = False

    def feed(self, *values: bytes, partition: int = 0, key: bytes | None = None) -> None:
        for value in values:
            offset = self.next_offset.get(partition, 0)
            self.queue.append(Record(partition, offset, value, key))
            self.next_offset[partition] = offset + 1

    def start(self, offsets: Mapping[int, int] | None, *, resume_after_ns: int | None) -> None:
        self.position = dict(offsets or {})

    def poll(self, timeout_s: float) -> list[Record]:
        out, self.queue = self.queue, []
        for r in out:
            self.position[r.partition] = r.offset + 1
        return out

    def positions(self) -> dict[int, int]:
        return dict(self.position)

    def health(self) -> Health:
        return Health(connected=True, caught_up=self.caught_up)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        self.letters.append((record, reason))

    def flush(self, timeout_s: float) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
