"""The daemon loop with a real publisher on tmpfs and an in-memory source."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache_daemon.daemon import Daemon
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.status import read_status
from cache_daemon.writer import PublishLayout
from contract.metadata import Counters
from contract.series import SeriesIdError, series_id_of_key
from contract.status import process_start_ticks
from shm import Publisher, Reader, Snapshot
from tests._wait import wait_until
from tests.daemon.conftest import ListSource

T0 = "2000-06-05T00:{:02d}:00Z"


def event(minute: int, value: float) -> bytes:
    return json.dumps({"time": T0.format(minute), "demand_mw": value}).encode()


def make(
    shm_dir: Path, *, interval_ms: int = 20, layout: PublishLayout = "auto"
) -> tuple[Daemon, ListSource, Publisher]:
    source = ListSource()
    publisher = Publisher(shm_dir)
    windows = SeriesWindows(["demand_mw"], max_rows=100, max_duration_ns=None)
    daemon = Daemon(
        source=source,
        publisher=publisher,
        windows=windows,
        topic="demand",
        shm_dir=shm_dir,
        publish_interval_ms=interval_ms,
        layout=layout,
    )
    source.start(None, resume_after_ns=None)
    return daemon, source, publisher


def step_until(daemon: Daemon, publisher: Publisher, generation: int) -> None:
    """Step until ``publisher`` has published ``generation`` (at most 5 s). An interval of 1 ms
    is shorter than a write on a loaded machine, and a write longer than the interval holds the
    next publication back by as long again (``Coalescer``), so one step 2 ms later may be early.
    """
    deadline = time.monotonic() + 5
    while publisher.generation < generation and time.monotonic() < deadline:
        time.sleep(0.002)
        daemon.step()


def test_events_are_published_with_offsets_and_checksum(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir)
    source.feed(event(2, 20.0), event(0, 0.0), event(1, 10.0), event(1, 11.0))
    daemon.step()
    snap = Reader(shm_dir).current()
    assert snap is not None
    assert snap.table.column("demand_mw").to_pylist() == [0.0, 11.0, 20.0]
    md = snap.metadata
    assert json.loads(md["offsets"]) == {"0": 4}
    assert md["state"] == "live" and md["source"] == "kafka" and md["rows"] == "3"
    assert md["window_checksum"] == snap.data_checksum()
    assert Counters.from_json(md["counters"]).events == 4
    publisher.close()


def test_poison_records_are_dead_lettered_counted_and_skipped(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir)
    source.feed(b"{oops", event(0, 1.0), b'{"time": "2000-06-05T00:01:00Z", "demand_mw": NaN}')
    source.feed(b'{"time": "2000-06-05T00:02:00Z", "demand_mw": "x"}', b"[]", b"{oops")
    daemon.step()
    assert [(r.offset, reason) for r, reason in source.letters] == [
        (0, "bad_json"),
        (2, "non_finite"),
        (3, "wrong_type"),
        (4, "not_object"),
        (5, "bad_json"),
    ]
    assert daemon.counters.dead_letters == {
        "bad_json": 2,
        "non_finite": 1,
        "wrong_type": 1,
        "not_object": 1,
    }
    snap = Reader(shm_dir).current()
    assert snap is not None
    assert snap.table.num_rows == 1
    assert json.loads(snap.metadata["offsets"]) == {"0": 6}
    publisher.close()


def test_publications_are_coalesced_and_skipped_when_unchanged(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir, interval_ms=1000)
    source.feed(event(0, 1.0))
    daemon.step()
    assert publisher.generation == 1
    source.feed(event(1, 2.0))
    daemon.step()
    source.feed(event(2, 3.0))
    daemon.step()
    assert publisher.generation == 1  # inside the interval
    time.sleep(1.0)
    daemon.step()
    assert publisher.generation == 2
    assert Reader(shm_dir).current().table.num_rows == 3  # type: ignore[union-attr]
    for _ in range(3):
        daemon.step()
    assert publisher.generation == 2  # nothing changed, nothing published
    publisher.close()


def test_an_event_after_a_quiet_interval_is_published_in_the_same_step(shm_dir: Path) -> None:
    # 200 ms: longer than a first write on a loaded machine, which would otherwise hold the
    # next publication back (Coalescer) and make this test about the machine's speed.
    daemon, source, publisher = make(shm_dir, interval_ms=200)
    source.feed(event(0, 1.0))
    daemon.step()
    time.sleep(0.21)
    source.feed(event(1, 2.0))
    daemon.step()
    assert publisher.generation == 2
    assert Reader(shm_dir).current().table.num_rows == 2  # type: ignore[union-attr]
    publisher.close()


def test_the_interval_counts_from_the_capture_not_the_end_of_the_write(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A write that takes 100 ms must not push the next slot 100 ms later: an event just past
    # the 300 ms interval after the capture is published at once, although it is only about
    # 200 ms after the write ended. The margins leave room for a loaded machine's scheduling:
    # the write would have to take over 300 ms (a backlog, which may push the slot) to fail.
    daemon, source, publisher = make(shm_dir, interval_ms=300)
    write = publisher.publish
    write_started: list[float] = []

    def slow(table: pa.Table, *, metadata: dict[str, str]) -> int:
        write_started.append(time.monotonic())  # the capture was at or before this instant
        time.sleep(0.1)
        return write(table, metadata=metadata)

    monkeypatch.setattr(publisher, "publish", slow)
    source.feed(event(0, 1.0))
    daemon.step()
    assert publisher.generation == 1
    time.sleep(max(0.0, write_started[0] + 0.305 - time.monotonic()))
    source.feed(event(1, 2.0))
    daemon.step()
    assert publisher.generation == 2
    publisher.close()


def test_restoring_then_live_each_published(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir, interval_ms=1)
    source.caught_up = False
    source.feed(event(0, 1.0))
    daemon.step()
    reader = Reader(shm_dir)
    assert reader.current().metadata["state"] == "restoring"  # type: ignore[union-attr]
    assert read_status(shm_dir)["state"] == "restoring"  # type: ignore[index]
    source.caught_up = True
    step_until(daemon, publisher, 2)
    assert reader.current().metadata["state"] == "live"  # type: ignore[union-attr]
    assert publisher.generation == 2
    publisher.close()


def test_run_stops_on_flag_and_publishes_pending_changes(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir, interval_ms=60_000)
    source.feed(event(0, 1.0))
    daemon.step()
    source.feed(event(1, 2.0))  # read at the next poll, inside the interval
    stop = threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,))
    thread.start()
    wait_until(lambda: not source.queue, timeout=10, what="the loop polled the pending event")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert source.closed
    snap = Reader(shm_dir).current()
    assert snap is not None and snap.table.num_rows == 2
    status = read_status(shm_dir)
    assert status is not None and status["state"] == "stopping"
    publisher.close()


def test_status_file_contract(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir)
    source.feed(event(0, 1.0), b"bad")
    daemon.step()
    status = read_status(shm_dir)
    assert status is not None
    assert set(status) == {
        "pid",
        "state",
        "source",
        "started_ns",
        "start_ticks",
        "heartbeat_ns",
        "last_publish_ns",
        "generation",
        "lag",
        "counters",
        "last_error",
    }
    assert status["generation"] == 1 and status["state"] == "live"
    assert 0 < status["started_ns"] <= status["heartbeat_ns"]
    # The writer's start as the kernel counts it: what the health probe checks its pid by.
    assert status["start_ticks"] == process_start_ticks(status["pid"])
    assert status["counters"] == {
        "events": 1,
        "dead_letters": {"bad_json": 1},
        "dropped_late": 0,
        "publish_errors": 0,
        "series_expired": 0,
    }
    assert (shm_dir / "daemon-status.json").stat().st_mode & 0o777 == 0o640
    publisher.close()


@pytest.mark.parametrize("layout", ["inline", "segmented"])
def test_publish_failure_keeps_last_generation_and_reports(
    shm_dir: Path, monkeypatch: pytest.MonkeyPatch, layout: PublishLayout
) -> None:
    daemon, source, publisher = make(shm_dir, interval_ms=1, layout=layout)
    source.feed(event(0, 1.0))
    daemon.step()
    assert publisher.generation == 1

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("shm._commit.write_file", full)
    source.feed(event(1, 2.0))
    deadline = time.monotonic() + 2  # a slow first write may hold the next one back
    while not daemon.counters.publish_errors and time.monotonic() < deadline:
        time.sleep(0.002)
        daemon.step()
    assert publisher.generation == 1
    assert daemon.counters.publish_errors == 1
    status = read_status(shm_dir)
    assert status is not None and status["state"] == "degraded"
    assert "No space left" in str(status["last_error"])
    assert Reader(shm_dir).current().table.num_rows == 1  # type: ignore[union-attr]
    monkeypatch.undo()
    deadline = time.monotonic() + 2
    while publisher.generation == 1 and time.monotonic() < deadline:
        daemon.step()
    assert publisher.generation == 2
    assert daemon.state == "live"
    # The rows of the failed publication are in the next one.
    snap = Reader(shm_dir).current()
    assert snap is not None and snap.segmented == (layout == "segmented")
    assert snap.table.column("demand_mw").to_pylist() == [1.0, 2.0]
    publisher.close()


# -- keyed records: one series per key ---------------------------------------------------------


def keyed(shm_dir: Path, **kwargs: Any) -> tuple[Daemon, ListSource, Publisher]:
    source = ListSource()
    publisher = Publisher(shm_dir)
    daemon = Daemon(
        source=source,
        publisher=publisher,
        windows=SeriesWindows(["demand_mw"], max_rows=100, max_duration_ns=None, **kwargs),
        topic="demand",
        shm_dir=shm_dir,
        publish_interval_ms=1,
    )
    source.start(None, resume_after_ns=None)
    return daemon, source, publisher


def series_rows(snap: Snapshot) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    table = snap.table
    for sid, v in zip(
        table.column("series_id").to_pylist(), table.column("demand_mw").to_pylist(), strict=True
    ):
        out.setdefault(sid, []).append(v)
    return out


def test_keyed_records_are_published_per_series(shm_dir: Path) -> None:
    daemon, source, publisher = keyed(shm_dir)
    source.feed(event(1, 1.0), event(0, 0.0), key=b"meter-\xc3\xa4")
    source.feed(event(0, 5.0), key=b"b")
    source.feed(event(3, 30.0))  # no key: the default series
    source.feed(event(2, 20.0), key=b"")  # an empty key is no key
    source.feed(event(2, 2.0), key=b"meter-\xc3\xa4")
    daemon.step()
    snap = Reader(shm_dir).current()
    assert snap is not None
    assert series_rows(snap) == {"b": [5.0], "default": [20.0, 30.0], "meter-ä": [0.0, 1.0, 2.0]}
    md = snap.metadata
    assert (md["rows"], md["series"]) == ("6", "3")
    assert md["time_min"] == "2000-06-05T00:00:00+00:00"
    assert md["time_max"] == "2000-06-05T00:03:00+00:00"
    assert json.loads(md["offsets"]) == {"0": 6}
    assert md["window_checksum"] == snap.data_checksum()
    publisher.close()


def test_a_keyless_stream_publishes_one_default_series(shm_dir: Path) -> None:
    daemon, source, publisher = make(shm_dir)
    source.feed(event(0, 1.0), event(1, 2.0))
    daemon.step()
    snap = Reader(shm_dir).current()
    assert snap is not None
    assert snap.table.schema.names == ["series_id", "time", "demand_mw"]
    assert series_rows(snap) == {"default": [1.0, 2.0]}
    assert snap.metadata["series"] == "1"
    publisher.close()


def test_bad_keys_and_the_series_limit_are_dead_lettered_with_their_reasons(
    shm_dir: Path,
) -> None:
    daemon, source, publisher = keyed(shm_dir, max_series=2)
    source.feed(event(0, 1.0), key=b"a")
    source.feed(event(0, 1.0), key=b"\xff\xfe")
    source.feed(event(0, 1.0), key=b"k" * 129)
    source.feed(b"{oops", key=b"\xff")  # a bad key and a bad value: the key is checked first
    source.feed(event(0, 2.0), key=b"b")
    source.feed(event(0, 3.0), key=b"c")  # a third series: over MAX_SERIES
    source.feed(event(1, 4.0), key=b"a")  # series already held go on
    daemon.step()
    assert [(r.offset, reason) for r, reason in source.letters] == [
        (1, "key_not_utf8"),
        (2, "key_too_long"),
        (3, "key_not_utf8"),
        (5, "series_limit"),
    ]
    assert daemon.counters.dead_letters == {
        "key_not_utf8": 2,
        "key_too_long": 1,
        "series_limit": 1,
    }
    assert daemon.counters.events == 3
    snap = Reader(shm_dir).current()
    assert snap is not None
    assert series_rows(snap) == {"a": [1.0, 4.0], "b": [2.0]}
    assert json.loads(snap.metadata["offsets"]) == {"0": 7}
    publisher.close()


def test_series_dropped_by_the_ttl_are_counted_and_published(shm_dir: Path) -> None:
    daemon, source, publisher = keyed(shm_dir, ttl_ns=10 * 60 * 10**9)
    source.feed(event(0, 1.0), key=b"quiet")
    source.feed(event(0, 1.0), event(5, 2.0), key=b"busy")
    daemon.step()
    snap = Reader(shm_dir).current()
    assert snap is not None and set(series_rows(snap)) == {"quiet", "busy"}
    source.feed(event(11, 3.0), key=b"busy")
    step_until(daemon, publisher, 2)
    snap = Reader(shm_dir).current()
    assert snap is not None and series_rows(snap) == {"busy": [1.0, 2.0, 3.0]}
    counters = Counters.from_json(snap.metadata["counters"])
    assert counters.series_expired == 1

    def counted() -> bool:
        daemon.step()  # the status file is rewritten every 250 ms
        status = read_status(shm_dir)
        return status is not None and status["counters"]["series_expired"] == 1

    wait_until(counted, timeout=10, what="the status file counts the expired series")
    publisher.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys=st.lists(st.one_of(st.none(), st.binary(max_size=140)), min_size=1, max_size=12))
def test_any_key_names_its_series_or_is_dead_lettered_with_its_reason(
    keys: list[bytes | None],
) -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        daemon, source, publisher = keyed(Path(tmp) / "w")
        for i, key in enumerate(keys):
            source.feed(event(i, float(i)), key=key)
        daemon.step()
        expected: dict[str, list[float]] = {}
        letters = []
        for i, key in enumerate(keys):
            try:
                expected.setdefault(series_id_of_key(key), []).append(float(i))
            except SeriesIdError as exc:
                letters.append((i, exc.reason))
        assert [(r.offset, reason) for r, reason in source.letters] == letters
        snap = Reader(Path(tmp) / "w").current()
        if expected:
            assert snap is not None and series_rows(snap) == expected
            assert json.loads(snap.metadata["offsets"]) == {"0": len(keys)}
            assert snap.metadata["series"] == str(len(expected))
        publisher.close()
