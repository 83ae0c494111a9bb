"""The status file's heartbeat: fresh while the loop lives, stale once it is stuck."""

from __future__ import annotations

import time
from pathlib import Path

from cache_daemon.status import Heartbeat, Liveness, StatusFile, read_status
from contract.metadata import Counters
from tests._wait import wait_until


def write(status: StatusFile) -> None:
    status.write(
        state="live",
        source="kafka",
        generation=3,
        last_publish_ns=None,
        lag={0: 1},
        counters=Counters(events=2),
        last_error=None,
    )


def heartbeat_ns(directory: Path) -> int:
    body = read_status(directory)
    assert body is not None
    return int(body["heartbeat_ns"])  # type: ignore[call-overload]


def heartbeat_age_s(directory: Path) -> float:
    return (time.time_ns() - heartbeat_ns(directory)) / 1e9


def test_heartbeat_thread_refreshes_while_alive_and_stops_when_stuck(tmp_path: Path) -> None:
    status = StatusFile(tmp_path)
    liveness = Liveness(stall_s=3600)
    write(status)
    first = heartbeat_ns(tmp_path)
    beat = Heartbeat(status, liveness, max_age_s=0.1)
    beat.start()
    try:
        # The loop "blocks" (no write) but is still within stall_s: the thread refreshes.
        wait_until(lambda: heartbeat_ns(tmp_path) > first, timeout=5, what="a refresh")
        body = read_status(tmp_path)
        assert body is not None and body["generation"] == 3 and body["lag"] == {"0": 1}
        # Now the loop counts as stuck: the heartbeat must age far past max_age_s (a thread
        # still refreshing would keep it under 0.1 s).
        liveness.stall_s = 0.0
        wait_until(lambda: heartbeat_age_s(tmp_path) > 1.0, timeout=5, what="a frozen heartbeat")
        frozen = heartbeat_ns(tmp_path)
        liveness.stall_s = 3600
        liveness.beat()
        wait_until(lambda: heartbeat_ns(tmp_path) > frozen, timeout=5, what="refreshes again")
    finally:
        beat.stop()


def test_status_file_is_replaced_atomically_without_leftovers(tmp_path: Path) -> None:
    status = StatusFile(tmp_path)
    for _ in range(20):
        write(status)
    assert [p.name for p in tmp_path.iterdir()] == ["daemon-status.json"]


def started_ns(directory: Path) -> int:
    body = read_status(directory)
    assert body is not None
    value = body["started_ns"]
    assert isinstance(value, int)
    return value


def test_start_time_is_written_unchanged_by_every_write_and_heartbeat(tmp_path: Path) -> None:
    """``started_ns`` marks the process start: only a new writer (a restart) changes it."""
    before = time.time_ns()
    status = StatusFile(tmp_path)
    write(status)
    started = started_ns(tmp_path)
    assert before <= started <= heartbeat_ns(tmp_path)
    time.sleep(0.01)
    write(status)
    status.refresh(0)
    assert started_ns(tmp_path) == started
    write(StatusFile(tmp_path))
    assert started_ns(tmp_path) > started
