"""The daemon against the real Kafka broker and S3 server of the test stack (no mocks)."""

from __future__ import annotations

import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic

from cache_daemon.config import DaemonConfig
from cache_daemon.window import TIME_TYPE
from contract.metadata import Counters
from shm import Reader
from tests._stack import StackHandle
from tests.concurrency._recorder import Recorder
from tests.daemon._helpers import (
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
    values_by_index,
    wait_for,
    wait_status,
)

pytestmark = pytest.mark.integration


def test_events_reach_the_published_window(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(3)
    produced = []
    for p in range(3):
        events = [event(i, 100.0 + i) for i in range(p, 30, 3)]
        produced += stack.produce_json(topic, events, partition=p)
    with running(config(stack, shm_dir, topic)):
        snap = wait_for(Reader(shm_dir), covers(ends(produced)), what="all offsets")
        wait_status(
            shm_dir, lambda s: s["state"] == "live" and s["lag"] == {"0": 0, "1": 0, "2": 0}
        )
    assert values_by_index(snap) == {i: 100.0 + i for i in range(30)}
    md = snap.metadata
    assert offsets(snap) == {0: 10, 1: 10, 2: 10}
    assert md["topic"] == topic and md["source"] == "kafka" and md["rows"] == "30"
    assert md["window_checksum"] == snap.data_checksum()
    assert snap.table.schema.field("time").type == TIME_TYPE


def test_duplicates_late_and_too_old_events(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    first = [event(i, float(i)) for i in range(20) if i != 15]
    stack.produce_json(topic, first)
    with running(config(stack, shm_dir, topic, WINDOW_ROWS="10")):
        reader = Reader(shm_dir)
        wait_for(reader, covers({0: 19}))
        produced = stack.produce_json(
            topic,
            [
                event(12, -12.0),  # duplicate: last write wins
                event(15, 15.5),  # late, inside the window: inserted
                event(3, 3.0),  # older than the window: counted and dropped
                event(12, -12.0),  # identical duplicate: changes nothing
            ],
        )
        snap = wait_for(reader, covers(ends(produced)))
    expected = {i: float(i) for i in range(10, 20)}
    expected.update({12: -12.0, 15: 15.5})
    assert values_by_index(snap) == expected
    counters = Counters.from_json(snap.metadata["counters"])
    assert counters.events == 23
    assert counters.dropped_late == 1


def test_poison_records_go_to_the_dlq_with_reasons(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    poison: list[tuple[bytes, str]] = [
        (b"{not json", "bad_json"),
        (b'"a string"', "not_object"),
        (b'{"demand_mw": 1}', "missing_time"),
        (b'{"time": "2000-06-05T00:00:00", "demand_mw": 1}', "bad_time"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": "1"}', "wrong_type"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": NaN}', "non_finite"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1e300}', "out_of_range"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1, "x": 2}', "unknown_column"),
    ]
    records: list[Any] = [event(0, 1.0)]
    for raw, _ in poison:
        records += [raw]
    records.append(event(1, 2.0))
    produced = stack.produce_json(topic, records)
    dlq = f"{topic}.dlq"
    with running(config(stack, shm_dir, topic)):
        snap = wait_for(Reader(shm_dir), covers(ends(produced)))
    assert values_by_index(snap) == {0: 1.0, 1: 2.0}
    counters = Counters.from_json(snap.metadata["counters"])
    assert counters.dead_letters == {reason: 1 for _, reason in poison}
    letters = consume_all(stack, dlq, len(poison))
    assert [(letter.value, letter.headers["reason"].decode()) for letter in letters] == poison
    first_headers = letters[0].headers
    assert first_headers["source_topic"].decode() == topic
    assert first_headers["source_offset"] == b"1"
    assert first_headers["detail"]


def test_kill_9_and_restart_lose_and_duplicate_nothing(
    stack: StackHandle, shm_dir: Path, tmp_path: Path
) -> None:
    n = 20_000
    topic = stack.new_topic(2)
    env = stack.env(
        SHM_DIR=str(shm_dir), KAFKA_TOPIC=topic, PUBLISH_INTERVAL_MS="5", WINDOW_ROWS="100000"
    )
    produced = stack.produce_json(topic, [event(i, float(i)) for i in range(n)])
    reader = Reader(shm_dir)

    def more() -> dict[int, int]:
        produced.extend(stack.produce_json(topic, [event(i, float(i)) for i in range(n, n + 500)]))
        return ends(produced)

    kill_mid_catch_up_and_restart(env, reader, tmp_path, total=n, after_kill=more)
    final = reader.current()
    assert final is not None
    assert offsets(final) == ends(produced)
    assert values_by_index(final) == {i: float(i) for i in range(n + 500)}
    counters = Counters.from_json(final.metadata["counters"])
    assert counters.events == n + 500  # every record counted exactly once across the kill
    assert counters.dead_letters == {}


def test_broker_restart_mid_stream_is_survived(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    produced = stack.produce_json(topic, [event(i, float(i)) for i in range(10)])
    reader = Reader(shm_dir)
    with running(config(stack, shm_dir, topic)):
        before = wait_for(reader, covers(ends(produced)))
        try:
            stack.stop_kafka()
            status = wait_status(
                shm_dir, lambda s: s["state"] == "degraded", timeout=20, what="degraded"
            )
            assert status["last_error"]
            assert reader.current().generation == before.generation  # type: ignore[union-attr]
            assert status["heartbeat_ns"] > time.time_ns() - 2 * 10**9
        finally:
            stack.start_kafka()
        produced += stack.produce_json(topic, [event(i, float(i)) for i in range(10, 20)])
        snap = wait_for(reader, covers(ends(produced)), timeout=30)
        wait_status(shm_dir, lambda s: s["state"] == "live", what="live again")
    assert values_by_index(snap) == {i: float(i) for i in range(20)}


def test_bootstrap_from_s3_snapshot_then_catch_up(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    bucket = stack.new_bucket()
    produced = stack.produce_json(topic, [event(i, float(i)) for i in range(100)])
    # The snapshot holds the first 50 events with values Kafka does not have: if the daemon
    # re-read them instead of seeking to the recorded offset, the values would change.
    times = pa.array([(T0_S + i * 1800) * 10**9 for i in range(50)], pa.int64()).cast(TIME_TYPE)
    table = pa.table({"time": times, "demand_mw": [-float(i) for i in range(50)]})
    put_snapshot(stack, bucket, table, {0: 50}, topic)
    # A slow interval keeps each generation in the directory long enough to be recorded.
    cfg = config(
        stack,
        shm_dir,
        topic,
        SNAPSHOT_BUCKET=bucket,
        SNAPSHOT_KEY="window.parquet",
        PUBLISH_INTERVAL_MS="250",
    )
    reader = Reader(shm_dir)
    # Catch-up can replace the snapshot's generation before any poll sees it: a recorder
    # woken by every rename keeps each generation the daemon publishes.
    shm_dir.mkdir(mode=0o750)
    with Recorder(shm_dir, shm_dir.parent / "generations.jsonl") as recorder, running(cfg):
        final = wait_for(reader, covers(ends(produced)), what="caught up")
        records = recorder.wait_for(final.generation)
    first = records[min(records)]
    assert min(records) == 1 and not any(r.get("missed") for r in records.values()), records
    assert (first["source"], first["state"], first["actual_rows"]) == ("snapshot", "restoring", 50)
    assert all(r["actual"] == r["window_checksum"] for r in records.values())
    assert final.metadata["source"] == "kafka" and final.metadata["state"] == "live"
    expected = {i: -float(i) for i in range(50)} | {i: float(i) for i in range(50, 100)}
    assert values_by_index(final) == expected
    assert Counters.from_json(final.metadata["counters"]).events == 50


def test_unreachable_s3_and_missing_topic_do_not_stop_the_daemon(
    stack: StackHandle, shm_dir: Path
) -> None:
    topic = f"later-{os.getpid()}-{time.monotonic_ns()}"
    cfg = DaemonConfig.from_env(
        stack.env(
            SHM_DIR=str(shm_dir),
            KAFKA_TOPIC=topic,
            S3_ENDPOINT="127.0.0.1:9",  # nothing listens on the discard port
            SNAPSHOT_BUCKET="snapshots",
            SNAPSHOT_KEY="window.parquet",
            PUBLISH_INTERVAL_MS="20",
        )
    )
    with running(cfg):
        status = wait_status(
            shm_dir, lambda s: s["state"] == "degraded" and "does not exist" in str(s["last_error"])
        )
        assert status["generation"] == 0
        admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
        try:
            admin.create_topics([NewTopic(name=topic, num_partitions=1, replication_factor=1)])
        finally:
            admin.close()
        wait_status(
            shm_dir,
            lambda s: "does not exist" not in str(s["last_error"]),
            what="the daemon noticed the new topic",
        )
        produced = stack.produce_json(topic, [event(0, 1.0)])
        snap = wait_for(Reader(shm_dir), covers(ends(produced)), timeout=30)
    assert values_by_index(snap) == {0: 1.0}


def test_new_partitions_are_picked_up(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    produced = stack.produce_json(topic, [event(0, 1.0)])
    with running(config(stack, shm_dir, topic)):
        reader = Reader(shm_dir)
        wait_for(reader, covers(ends(produced)))
        admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=2)})
        finally:
            admin.close()
        produced += stack.produce_json(topic, [event(1, 2.0)], partition=1)
        snap = wait_for(reader, covers(ends(produced)), timeout=30, what="partition 1 read")
    assert offsets(snap) == {0: 1, 1: 1}
    assert values_by_index(snap) == {0: 1.0, 1: 2.0}


def upload_model(stack: StackHandle, bucket: str, data: bytes, digest: str | None = None) -> str:
    sha = hashlib.sha256(data).hexdigest()
    client = stack.minio()
    side = f"{digest or sha}  model.skops\n".encode()
    client.put_object(
        bucket_name=bucket, object_name="model.skops", data=io.BytesIO(data), length=len(data)
    )
    client.put_object(
        bucket_name=bucket,
        object_name="model.skops.sha256",
        data=io.BytesIO(side),
        length=len(side),
    )
    return sha


def test_model_update_reaches_a_reader(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    bucket = stack.new_bucket()
    sha1 = upload_model(stack, bucket, b"model one")
    stack.produce_json(topic, [event(0, 1.0)])
    cfg = config(
        stack,
        shm_dir,
        topic,
        MODEL_BUCKET=bucket,
        MODEL_KEY="model.skops",
        MODEL_POLL_INTERVAL_S="0.2",
    )
    reader = Reader(shm_dir)
    with running(cfg):
        snap = wait_for(reader, lambda s: s.metadata["model_sha256"] == sha1)
        assert (shm_dir / snap.metadata["model_file"]).read_bytes() == b"model one"
        assert snap.metadata["model_version"] == f"sha256:{sha1[:12]}"
        # A tampered upload (digest does not match) is refused and reported.
        upload_model(stack, bucket, b"evil model", digest=sha1)
        wait_status(shm_dir, lambda s: "does not match" in str(s["last_error"]), what="refusal")
        assert reader.current().metadata["model_sha256"] == sha1  # type: ignore[union-attr]
        sha2 = upload_model(stack, bucket, b"model two")
        snap = wait_for(reader, lambda s: s.metadata["model_sha256"] == sha2, what="new model")
        assert (shm_dir / snap.metadata["model_file"]).read_bytes() == b"model two"
        assert snap.table.num_rows == 1


def test_recorded_offset_out_of_range_reads_from_the_start(
    stack: StackHandle, shm_dir: Path
) -> None:
    # A snapshot whose offset is past the end (the topic was recreated since): nothing may be
    # skipped, so the partition is read from its first record.
    topic = stack.new_topic(1)
    bucket = stack.new_bucket()
    produced = stack.produce_json(topic, [event(i, float(i)) for i in range(10)])
    times = pa.array([(T0_S - 1800) * 10**9], pa.int64()).cast(TIME_TYPE)
    put_snapshot(stack, bucket, pa.table({"time": times, "demand_mw": [0.5]}), {0: 999}, topic)
    cfg = config(stack, shm_dir, topic, SNAPSHOT_BUCKET=bucket, SNAPSHOT_KEY="window.parquet")
    with running(cfg):
        snap = wait_for(
            Reader(shm_dir),
            lambda s: s.metadata["source"] == "kafka" and offsets(s) == ends(produced),
        )
    assert values_by_index(snap) == {-1: 0.5} | {i: float(i) for i in range(10)}


def test_start_while_the_broker_is_down_then_catch_up(stack: StackHandle, shm_dir: Path) -> None:
    topic = stack.new_topic(1)
    produced = stack.produce_json(topic, [event(i, float(i)) for i in range(5)])
    reader = Reader(shm_dir)
    stack.stop_kafka()
    try:
        with running(config(stack, shm_dir, topic)):
            status = wait_status(shm_dir, lambda s: s["state"] == "degraded", what="degraded")
            assert "Kafka" in str(status["last_error"])
            assert status["heartbeat_ns"] > time.time_ns() - 2 * 10**9
            stack.start_kafka()
            snap = wait_for(reader, covers(ends(produced)), timeout=40, what="caught up")
            wait_status(shm_dir, lambda s: s["state"] == "live", what="live")
    finally:
        stack.start_kafka()
    assert values_by_index(snap) == {i: float(i) for i in range(5)}
