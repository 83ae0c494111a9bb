"""Coalescing and generation metadata."""

from __future__ import annotations

import itertools
import json

import pyarrow as pa
import pytest

from cache_daemon.publication import Coalescer, ModelInfo, WindowFacts, build_metadata
from cache_daemon.window import TIME_TYPE
from contract.metadata import Counters
from shm import table_checksum

MS = 1_000_000


def test_first_publication_is_due_at_once() -> None:
    c = Coalescer(50 * MS)
    assert c.due(0, "a", 0)


def test_changes_are_coalesced_to_one_per_interval() -> None:
    c = Coalescer(50 * MS)
    c.published(0, "a", 0)
    assert not c.due(10 * MS, "b", 0)
    assert c.wait_ns(10 * MS, "b", 0) == 40 * MS
    assert c.due(50 * MS, "b", 0)


def test_a_lone_change_after_a_quiet_interval_is_due_at_once() -> None:
    c = Coalescer(50 * MS)
    c.published(0, "a", 0)
    assert c.due(50 * MS, "b", 0)
    assert c.wait_ns(50 * MS, "b", 0) == 0
    c.published(50 * MS, "b", 0)
    assert c.due(5_000 * MS, "c", 0)


def test_a_burst_is_coalesced_to_at_most_one_publication_per_interval() -> None:
    # A change every millisecond for one second, published whenever due.
    c = Coalescer(50 * MS)
    published: list[int] = []
    for now in range(0, 1000 * MS, MS):
        if c.due(now, now, 0):
            c.published(now, now, 0)
            published.append(now)
    assert published[0] == 0  # the burst's first change goes out at once
    gaps = [b - a for a, b in itertools.pairwise(published)]
    assert min(gaps) >= 50 * MS
    assert len(published) == 20  # 0, 50, ..., 950 ms


def test_a_few_changes_held_up_together_go_out_as_they_arrive() -> None:
    # After a quiet spell, a stall releases four events 1 ms apart: with a burst of 4 each is
    # published at once; with the plain interval (burst 1) the last three wait for the next
    # slot, 20 ms after the first.
    for burst, expected in ((4, [100, 101, 102, 103]), (1, [100, 120])):
        c = Coalescer(20 * MS, burst=burst)
        c.published(0, 0, 0)
        published: list[int] = []
        content = 0
        for now in range(100 * MS, 200 * MS, MS // 2):
            if now in (100 * MS, 101 * MS, 102 * MS, 103 * MS):
                content += 1
            if c.due(now, content, 0):
                c.published(now, content, 0)
                published.append(now // MS)
        assert published == expected, (burst, published)


def test_a_sustained_stream_is_held_to_the_interval_after_its_burst() -> None:
    # A change every millisecond for a second: `burst` publications at once, then one per
    # interval; in no span of T ms more than burst + T / interval.
    c = Coalescer(20 * MS, burst=4)
    published: list[int] = []
    for now in range(0, 1000 * MS, MS):
        if c.due(now, now, 0):
            c.published(now, now, 0)
            published.append(now)
    assert published == [0, MS, 2 * MS, 3 * MS, *range(20 * MS, 1000 * MS, 20 * MS)]
    for i, start in enumerate(published):
        for j in range(i, len(published)):
            span = published[j] - start
            assert j - i + 1 <= 4 + span // (20 * MS), (start, published[j])
    # After the stream, a quiet spell of four intervals gives the whole burst back.
    quiet = published[-1] + 4 * 20 * MS
    for k in range(4):
        assert c.due(quiet + k, ("after", k), 0)
        c.published(quiet + k, ("after", k), 0)
    assert not c.due(quiet + 4, ("after", 4), 0)


def test_a_burst_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="burst must be at least 1"):
        Coalescer(20 * MS, burst=0)


def test_nothing_changed_means_no_publication() -> None:
    c = Coalescer(50 * MS)
    c.published(0, "a", 0)
    assert not c.due(10_000 * MS, "a", 0)
    assert c.wait_ns(10_000 * MS, "a", 0) is None


def test_progress_without_content_change_is_checkpointed_slowly() -> None:
    c = Coalescer(50 * MS, checkpoint_ns=1000 * MS)
    c.published(0, "a", 0)
    assert not c.due(500 * MS, "a", 1)
    assert c.due(1000 * MS, "a", 1)


def test_failure_backs_off() -> None:
    c = Coalescer(50 * MS)
    c.published(0, "a", 0)
    c.failed(100 * MS, 400 * MS)
    assert not c.due(300 * MS, "b", 0)
    assert c.due(500 * MS, "b", 0)


def test_a_slow_publication_keeps_the_next_as_long_after_it_as_it_took() -> None:
    c = Coalescer(20 * MS)
    c.published(0, "a", 0, took_ns=5 * MS)  # fast: the interval decides
    assert c.due(20 * MS, "b", 0)
    c.published(100 * MS, "b", 0, took_ns=300 * MS)  # slow: ended at 400 ms
    assert not c.due(120 * MS, "c", 0) and not c.due(699 * MS, "c", 0)
    assert c.due(700 * MS, "c", 0)
    assert c.wait_ns(400 * MS, "c", 0) == 300 * MS


def test_metadata_contract() -> None:
    # Rows by series, then time: the oldest and newest rows are not the first and last.
    table = pa.table(
        {
            "series_id": ["a", "a", "b"],
            "time": pa.array([s * 10**9 for s in (900, 1800, 0)], type=pa.int64()).cast(TIME_TYPE),
            "demand_mw": [1.0, 2.0, 3.0],
        }
    )
    counters = Counters(events=5, dead_letters={"bad_json": 2}, dropped_late=1)
    model = ModelInfo(version="v1", sha256="ab" * 32, file=f"model-{'ab' * 32}.skops")
    md = build_metadata(
        WindowFacts.of_table(table),
        series=2,
        offsets={1: 7, 0: 3},
        topic="demand",
        source="kafka",
        state="live",
        model=model,
        counters=counters,
    )
    assert json.loads(md["offsets"]) == {"0": 3, "1": 7}
    assert (md["rows"], md["series"]) == ("3", "2")
    assert md["time_min"] == "1970-01-01T00:00:00+00:00"
    assert md["time_max"] == "1970-01-01T00:30:00+00:00"
    assert md["window_checksum"] == table_checksum(table)
    assert md["model_file"] == model.file and md["model_sha256"] == model.sha256
    assert md["source"] == "kafka" and md["state"] == "live" and md["topic"] == "demand"
    assert Counters.from_json(md["counters"]) == counters
    assert all(isinstance(v, str) for v in md.values())


def test_schema_fingerprint_changes_with_columns() -> None:
    a = pa.table({"time": pa.array([0], type=TIME_TYPE), "x": [1.0]})
    b = pa.table({"time": pa.array([0], type=TIME_TYPE), "y": [1.0]})
    kwargs = {
        "series": 1,
        "offsets": {},
        "topic": "",
        "source": "replay",
        "state": "live",
        "model": None,
    }
    fa, fb = (
        build_metadata(WindowFacts.of_table(t), counters=Counters(), **kwargs)  # type: ignore[arg-type]
        for t in (a, b)
    )
    assert fa["schema_fingerprint"] != fb["schema_fingerprint"]


def test_counters_from_garbage_are_zero() -> None:
    assert Counters.from_json("not json") == Counters()
    assert Counters.from_json('{"events": "x"}') == Counters()
