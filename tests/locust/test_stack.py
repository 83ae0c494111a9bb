"""The modes that need the infrastructure, against the real stack (Kafka + S3 on loopback):
``real`` windows fetched from S3, and ``ingest`` freshness through Kafka -> daemon -> /cache.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from contract.defaults import SAMPLE_PATH as SAMPLE_SERIES
from locustfiles import UTC_ZONE, LoadConfig, SeriesError, format_times, load_series
from tests._stack import StackHandle
from tests.locust._service import LiveService, live_service, run_locust

KEY = "series/demand.parquet"
EVENTS = 500  # more than the model's 336-row lag window
INGEST_SECONDS = 8
# The daemon publishes a change within PUBLISH_INTERVAL_MS (50 ms in live_service); an event's
# typical trip Kafka -> daemon -> /cache is that plus a few round trips (measured: median
# 47-49 ms, max 152-217 ms). The median must stay within 8 intervals (8x the measured median,
# for a machine shared with other jobs); a daemon that held changes back until its 1 s
# checkpoint (median about 550 ms) or the next event exceeds it. The slowest sample only has
# to stay under the gate's 5 s: one stall of the machine is allowed.
PUBLISH_INTERVAL_MS = 50
MEDIAN_FRESHNESS_BOUND_MS = 8 * PUBLISH_INTERVAL_MS


def upload_sample(stack: StackHandle, bucket: str) -> None:
    data = SAMPLE_SERIES.read_bytes()
    stack.minio().put_object(
        bucket_name=bucket, object_name=KEY, data=io.BytesIO(data), length=len(data)
    )


def test_real_series_from_s3_equals_the_bundled_file(stack, s3_bucket):
    upload_sample(stack, s3_bucket)
    env = stack.env(LOCUST_SERIES_BUCKET=s3_bucket, LOCUST_SERIES_KEY=KEY)
    fetched = load_series(LoadConfig.from_env(env))
    bundled = load_series(LoadConfig())
    assert np.array_equal(fetched.times_ns, bundled.times_ns)
    assert np.array_equal(fetched.values, bundled.values)
    assert fetched.runs == ((0, 4032),)


def test_a_missing_s3_object_is_a_clear_error(stack, s3_bucket):
    env = stack.env(LOCUST_SERIES_BUCKET=s3_bucket, LOCUST_SERIES_KEY="nope.parquet")
    with pytest.raises(SeriesError, match=f"cannot fetch s3://{s3_bucket}/nope.parquet"):
        load_series(LoadConfig.from_env(env))


@pytest.fixture(scope="module")
def kafka_service(stack: StackHandle) -> Iterator[tuple[LiveService, str]]:
    """The service fed from a fresh topic holding the first rows of the sample series."""
    topic = stack.new_topic(1, prefix="locust")
    series = load_series(LoadConfig())
    times = format_times(series.times_ns[:EVENTS].tolist(), UTC_ZONE)
    values = series.values[:EVENTS].tolist()
    events = [{"time": t, "demand_mw": v} for t, v in zip(times, values, strict=True)]
    stack.produce_json(topic, events)
    env = {
        "DAEMON_SOURCE": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "KAFKA_TOPIC": topic,
    }
    env["PUBLISH_INTERVAL_MS"] = str(PUBLISH_INTERVAL_MS)
    with live_service(workers=2, daemon_env=env) as live:
        yield live, topic


def test_ingest_measures_freshness_and_real_reads_s3_once_per_process(
    stack, kafka_service, s3_bucket, tmp_path
):
    live, topic = kafka_service
    upload_sample(stack, s3_bucket)
    prefix = tmp_path / "ingest"
    done = run_locust(
        live.url,
        stack.env(
            KAFKA_TOPIC=topic,
            LOCUST_SERIES_BUCKET=s3_bucket,
            LOCUST_SERIES_KEY=KEY,
            LOCUST_WEIGHT_CACHED="0",
            LOCUST_WEIGHT_SYNTHETIC="0",
            LOCUST_WEIGHT_BAD="0",
            LOCUST_WEIGHT_REAL="3",
            LOCUST_WEIGHT_INGEST="1",
            LOCUST_MAX_FRESHNESS_MS="5000",
            LOCUST_P99_MS="2000",
        ),
        "--csv",
        str(prefix),
        users=4,
        seconds=INGEST_SECONDS,
    )
    log = done.stderr
    assert done.returncode == 0, log[-4000:]
    assert log.count(f"real series loaded from s3://{s3_bucket}/{KEY}") == 1
    assert "SLO gate ok: ingest freshness" in log
    with Path(f"{prefix}_stats.csv").open(newline="") as fh:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(fh)}
    ingest = rows[("INGEST", "kafka -> /cache")]
    assert ingest["Failure Count"] == "0", ingest
    assert 0 < float(ingest["50%"]) <= MEDIAN_FRESHNESS_BOUND_MS, ingest
    assert 0 < float(ingest["Max Response Time"]) <= 5000, ingest
    # One ingest user with no think time measures back to back: at the median bound it takes
    # at least this many samples, even granting half the run to start-up and stalls.
    expected = INGEST_SECONDS * 1000 // MEDIAN_FRESHNESS_BOUND_MS // 2
    assert int(ingest["Request Count"]) >= expected, ingest
    real = rows[("POST", "/predict real")]
    assert int(real["Request Count"]) > 0 and real["Failure Count"] == "0"
