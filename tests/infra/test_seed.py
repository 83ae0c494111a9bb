"""scripts.seed: the event stream it builds, its configuration errors, and a real upload and
replay against the stack (subprocess, as a person runs it)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, TopicPartition

from contract.series import series_id_of_key
from scripts._events import SERIES_SHIFT, TimeMode, events, keyed_events, series_ids
from scripts.errors import SeedError
from scripts.seed import DEFAULT_FILE, SeedConfig, main, progress_bar
from scripts.stack import ROOT
from tests._stack import StackHandle

SERIES = pd.read_parquet(DEFAULT_FILE)


def test_original_mode_replays_the_snapshot_rows() -> None:
    got = list(events(SERIES, mode="original", limit=None))
    assert len(got) == len(SERIES) == 4032
    assert got[0] == {"time": "2000-06-05T00:00:00Z", "demand_mw": 22262.0}
    assert got[-1] == {"time": "2000-08-27T23:30:00Z", "demand_mw": 23132.0}


def test_continue_mode_carries_on_after_the_last_row_and_cycles_values() -> None:
    got = list(events(SERIES, mode="continue", limit=4034))
    assert got[0] == {"time": "2000-08-28T00:00:00Z", "demand_mw": 22262.0}
    assert got[1]["time"] == "2000-08-28T00:30:00Z"
    # The sample spans whole weeks: after one pass the values start over on the same weekday.
    assert got[4032]["demand_mw"] == SERIES["demand_mw"].iloc[0]
    times = pd.to_datetime([e["time"] for e in got])
    assert (times[1:] - times[:-1] == pd.Timedelta(minutes=30)).all()


def test_now_mode_starts_at_the_current_step() -> None:
    now = datetime(2026, 1, 2, 3, 47, 12, tzinfo=UTC)
    got = list(events(SERIES, mode="now", limit=2, now=now))
    assert [e["time"] for e in got] == ["2026-01-02T03:30:00Z", "2026-01-02T04:00:00Z"]


def test_rows_with_missing_values_are_skipped_and_aware_times_kept() -> None:
    frame = pd.DataFrame(
        {
            "time": pd.date_range("2024-01-01T00:00:00+01:00", periods=3, freq="h"),
            "a": [1.0, float("nan"), 3.0],
        }
    )
    got = list(events(frame, mode="original", limit=None))
    assert got == [
        {"time": "2023-12-31T23:00:00Z", "a": 1.0},
        {"time": "2024-01-01T01:00:00Z", "a": 3.0},
    ]
    with pytest.raises(ValueError, match="no 'time' column"):
        list(events(frame.rename(columns={"time": "t"}), mode="original", limit=1))


def test_progress_line_counts_and_estimates() -> None:
    stream = io.StringIO()
    with progress_bar("replay demand", 10, file=stream) as bar:
        bar.update(5)
        line = str(bar)
        assert line.startswith("replay demand:  50%|") and " 5/10 [" in line
        assert "<" in line  # elapsed<remaining
        bar.update(5)
    assert "10/10" in stream.getvalue().split("\r")[-1]


@pytest.mark.parametrize(
    ("environ", "named"),
    [({"REPLAY_RATE": "fast"}, "REPLAY_RATE"), ({"S3_SECURE": "maybe"}, "S3_SECURE")],
)
def test_bad_variables_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SeedError, match=named):
        SeedConfig.from_env(environ)


def test_missing_settings_are_listed(caplog: pytest.LogCaptureFixture) -> None:
    assert main(["--no-progress"], environ={"S3_ENDPOINT": "127.0.0.1:1"}) == 2
    assert "S3_ACCESS_KEY, S3_SECRET_KEY, SNAPSHOT_BUCKET, SNAPSHOT_KEY" in caplog.text
    caplog.clear()
    assert main(["--no-upload", "--replay"], environ={}) == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in caplog.text


def consume_all(stack: StackHandle, topic: str, count: int) -> list[Any]:
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=10_000,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 20
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_upload_and_replay_through_the_real_servers(stack: StackHandle) -> None:
    bucket = f"seed-{time.monotonic_ns()}"  # not created: the seed creates it
    topic = f"seed-{time.monotonic_ns()}"  # not created either, 2 partitions
    environ = stack.env(
        SNAPSHOT_BUCKET=bucket,
        SNAPSHOT_KEY="snapshots/demand.parquet",
        KAFKA_TOPIC=topic,
        PATH="/usr/bin:/bin",
    )
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.seed",
            "--replay",
            "--limit",
            "40",
            "--rate",
            "400",
            "--partitions",
            "2",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30
    assert "40/40" in done.stderr  # the progress display
    assert f"s3://{bucket}/snapshots/demand.parquet" in done.stderr

    response = stack.minio().get_object(bucket_name=bucket, object_name="snapshots/demand.parquet")
    try:
        assert response.read() == DEFAULT_FILE.read_bytes()
    finally:
        response.close()
        response.release_conn()

    records = consume_all(stack, topic, 40)
    assert {r.partition for r in records} <= {0, 1}
    got = sorted((json.loads(r.value) for r in records), key=lambda e: e["time"])
    assert got == list(events(SERIES, mode="continue", limit=40))


def test_wrong_credentials_fail_with_a_clear_message(stack: StackHandle) -> None:
    environ = stack.env(
        S3_SECRET_KEY="wrong-secret-key", SNAPSHOT_BUCKET="anything", SNAPSHOT_KEY="x.parquet"
    )
    started = time.monotonic()
    assert main(["--no-progress"], environ=environ) == 2
    assert time.monotonic() - started < 10


def test_keyed_events_give_each_series_its_key_and_phase() -> None:
    got = list(keyed_events(SERIES, mode="continue", limit=7, series=3))
    assert [key for key, _ in got] == [b"series-0001", b"series-0002", b"series-0003"] * 2 + [
        b"series-0001"
    ]
    times = [event["time"] for _, event in got]
    assert times[:3] == ["2000-08-28T00:00:00Z"] * 3 and times[3] == "2000-08-28T00:30:00Z"
    demand = SERIES["demand_mw"]
    assert [event["demand_mw"] for _, event in got[:3]] == [
        demand.iloc[0],
        demand.iloc[SERIES_SHIFT],
        demand.iloc[2 * SERIES_SHIFT],
    ]
    assert series_ids(10_000)[-1] == "series-10000"
    with pytest.raises(ValueError, match=">= 0"):
        list(keyed_events(SERIES, mode="continue", limit=1, series=-1))


@settings(max_examples=50, deadline=None)
@given(
    series=st.integers(0, 40),
    limit=st.integers(0, 200),
    mode=st.sampled_from(["continue", "original"]),
)
def test_keyed_events_are_limit_events_with_keys_that_name_series(
    series: int, limit: int, mode: TimeMode
) -> None:
    got = list(keyed_events(SERIES, mode=mode, limit=limit, series=series))
    assert len(got) == limit
    ids = series_ids(series)
    for n, (key, _) in enumerate(got):
        if series == 0:
            assert key is None
        else:
            assert key is not None and series_id_of_key(key) == ids[n % series]
    # Without keys the events are those of events(), unchanged.
    if series == 0:
        assert [e for _, e in got] == list(events(SERIES, mode=mode, limit=limit))


def test_seed_sends_keyed_records(stack: StackHandle) -> None:
    topic = f"seed-keyed-{time.monotonic_ns()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.seed",
            *("--no-upload", "--replay", "--no-progress"),
            *("--series", "3", "--limit", "12", "--rate", "0", "--partitions", "2"),
        ],
        cwd=ROOT,
        env=stack.env(KAFKA_TOPIC=topic, PATH="/usr/bin:/bin"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    records = consume_all(stack, topic, 12)
    by_key: dict[bytes, list[str]] = {}
    for r in records:
        by_key.setdefault(r.key, []).append(json.loads(r.value)["time"])
    assert sorted(by_key) == [b"series-0001", b"series-0002", b"series-0003"]
    assert all(sorted(times) == times and len(times) == 4 for times in by_key.values())
    # Records of one key share a partition (the producer's key partitioner).
    assert all(len({r.partition for r in records if r.key == k}) == 1 for k in by_key)
