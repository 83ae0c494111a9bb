"""Keyed records, one series per key, against the real Kafka broker and S3 server (no mocks)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from cache_daemon.window import TIME_TYPE
from contract.metadata import Counters, GenerationMeta
from shm import Reader
from tests._stack import StackHandle
from tests.daemon._helpers import (
    STEP_NS,
    T0_S,
    config,
    consume_all,
    covers,
    ends,
    event,
    kill_mid_catch_up_and_restart,
    offsets,
    put_snapshot,
    running,
    series_values,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_keyed_records_end_up_per_series(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(3)
    ids = ["meter-1", "meter-2", "zähler-ß", "🙂", "x" * 128]
    events, keys = [], []
    for i in range(12):
        for n, sid in enumerate(ids):
            events.append(event(i, 100.0 * n + i))
            keys.append(sid.encode())
    events += [event(i, -float(i)) for i in range(5)]  # keyless: the default series
    keys += [None] * 5
    events.append(event(3, 999.0))  # a later duplicate in one series: last write wins
    keys.append(b"meter-2")
    produced = stack.produce_json(topic, events, keys=keys)
    assert len({partition for partition, _ in produced}) > 1  # keys spread over partitions
    with running(config(stack, shm_dir, topic)):
        snap = wait_for(Reader(shm_dir), covers(ends(produced)), what="all offsets")
    expected = {sid: {i: 100.0 * n + i for i in range(12)} for n, sid in enumerate(ids)}
    expected["meter-2"][3] = 999.0
    expected["default"] = {i: -float(i) for i in range(5)}
    assert series_values(snap) == expected
    meta = GenerationMeta.from_metadata(snap.metadata)
    assert (meta.rows, meta.series) == (65, 6)
    assert offsets(snap) == ends(produced)
    assert meta.counters.events == len(events)
    assert meta.window_checksum == snap.data_checksum()
    assert snap.table.schema.names == ["series_id", "time", "demand_mw"]
    assert snap.table.column("series_id").to_pylist() == sorted(
        snap.table.column("series_id").to_pylist()
    )


def test_bad_keys_and_the_series_limit_go_to_the_dlq_with_their_reasons(
    stack: StackHandle, shm_dir: Path
) -> None:
    topic = stack.new_topic(1)
    records: list[tuple[bytes | None, float, str | None]] = [
        (b"a", 1.0, None),
        (b"\xc3\x28", 2.0, "key_not_utf8"),
        (b"k" * 129, 3.0, "key_too_long"),
        (b"b", 4.0, None),
        (b"c", 5.0, "series_limit"),  # a third series with MAX_SERIES=2
        (None, 6.0, "series_limit"),  # the default series is a series like any other
        (b"a", 7.0, None),
    ]
    produced = stack.produce_json(
        topic,
        [event(i, value) for i, (_, value, _) in enumerate(records)],
        keys=[key for key, _, _ in records],
        partition=0,
    )
    with running(config(stack, shm_dir, topic, MAX_SERIES="2")):
        snap = wait_for(Reader(shm_dir), covers(ends(produced)))
    assert series_values(snap) == {"a": {0: 1.0, 6: 7.0}, "b": {3: 4.0}}
    counters = Counters.from_json(snap.metadata["counters"])
    assert counters.dead_letters == {"key_not_utf8": 1, "key_too_long": 1, "series_limit": 2}
    assert counters.events == 3
    rejected = [(i, key, reason) for i, (key, _, reason) in enumerate(records) if reason]
    letters = consume_all(stack, f"{topic}.dlq", len(rejected))
    assert [
        (int(m.headers["source_offset"]), m.key, m.headers["reason"].decode()) for m in letters
    ] == (rejected)
    assert all(m.headers["source_topic"].decode() == topic and m.headers["detail"] for m in letters)


def test_keyed_snapshot_then_catch_up(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    bucket = stack.new_bucket()
    keys = [b"a", b"b"] * 20
    produced = stack.produce_json(
        topic, [event(i // 2, float(i)) for i in range(40)], keys=keys, partition=0
    )
    # The snapshot holds the first 20 records (10 steps of "a" and "b") with values Kafka does
    # not have, and a series Kafka never sends.
    ids = ["a"] * 10 + ["b"] * 10 + ["only-in-snapshot"]
    steps = [*range(10), *range(10), 0]
    times = pa.array([(T0_S * 10**9 + s * STEP_NS) for s in steps], pa.int64()).cast(TIME_TYPE)
    table = pa.table(
        {"series_id": ids, "time": times, "demand_mw": [-1.0 - i for i in range(len(ids))]}
    )
    put_snapshot(stack, bucket, table, {0: 20}, topic)
    cfg = config(stack, shm_dir, topic, SNAPSHOT_BUCKET=bucket, SNAPSHOT_KEY="window.parquet")
    with running(cfg):
        final = wait_for(Reader(shm_dir), covers(ends(produced)), what="caught up")
    got = series_values(final)
    assert got["only-in-snapshot"] == {0: -21.0}
    assert got["a"] == {s: -1.0 - s for s in range(10)} | {
        i // 2: float(i) for i in range(20, 40, 2)
    }
    assert got["b"] == {s: -11.0 - s for s in range(10)} | {
        i // 2: float(i) for i in range(21, 40, 2)
    }
    assert final.metadata["series"] == "3"
    assert Counters.from_json(final.metadata["counters"]).events == 20


def test_ttl_drops_a_silent_series_once_across_a_restart(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    produced = stack.produce_json(topic, [event(0, 1.0)], keys=[b"silent"])
    produced += stack.produce_json(
        topic, [event(i, float(i)) for i in range(8)], keys=[b"talking"] * 8
    )
    cfg = config(stack, shm_dir, topic, SERIES_TTL_S=str(5 * STEP_NS / 1e9))
    reader = Reader(shm_dir)
    with running(cfg):
        snap = wait_for(reader, covers(ends(produced)))
    assert set(series_values(snap)) == {"talking"}
    assert Counters.from_json(snap.metadata["counters"]).series_expired == 1
    # A restart resumes from the generation: nothing expires twice, new silence is counted.
    produced += stack.produce_json(
        topic, [event(i, float(i)) for i in range(8, 20)], keys=[b"talking"] * 12
    )
    produced += stack.produce_json(topic, [event(20, 2.0)], keys=[b"late-comer"])
    with running(cfg):
        snap = wait_for(reader, covers(ends(produced)))
    assert set(series_values(snap)) == {"talking", "late-comer"}
    assert Counters.from_json(snap.metadata["counters"]).series_expired == 1
    produced += stack.produce_json(topic, [event(26, 3.0)], keys=[b"talking"])
    with running(cfg):
        snap = wait_for(reader, covers(ends(produced)))
    assert set(series_values(snap)) == {"talking"}
    assert Counters.from_json(snap.metadata["counters"]).series_expired == 2


def test_kill_9_with_many_keys_loses_and_duplicates_nothing(
    stack: StackHandle, shm_dir: Path, tmp_path: Path
) -> None:
    series, steps = 300, 30
    topic = stack.new_topic(2)
    env = stack.env(SHM_DIR=str(shm_dir), KAFKA_TOPIC=topic, PUBLISH_INTERVAL_MS="5")

    def batch(first: int, last: int) -> tuple[list[dict[str, object]], list[bytes | None]]:
        events, keys = [], []
        for i in range(first, last):
            for n in range(series):
                events.append(event(i, float(n * 1000 + i)))
                keys.append(f"series-{n:04d}".encode() if n else None)
        return events, keys

    events, keys = batch(0, steps)
    produced = stack.produce_json(topic, events, keys=keys)
    total = len(events)
    more, more_keys = batch(steps, steps + 5)

    def produce_more() -> dict[int, int]:
        produced.extend(stack.produce_json(topic, more, keys=more_keys))
        return ends(produced)

    final = kill_mid_catch_up_and_restart(
        env, Reader(shm_dir), tmp_path, total=total, after_kill=produce_more, timeout=60
    )
    total += len(more)
    expected = {
        (f"series-{n:04d}" if n else "default"): {i: float(n * 1000 + i) for i in range(steps + 5)}
        for n in range(series)
    }
    assert series_values(final) == expected
    counters = Counters.from_json(final.metadata["counters"])
    assert counters.events == total  # every record counted exactly once across the kill
    assert counters.dead_letters == {}
    assert final.metadata["series"] == str(series)
