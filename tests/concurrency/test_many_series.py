"""Many series end to end: a real Kafka broker, the real daemon and a real Gunicorn.

Keyed records for 300 series (400 half-hourly rows each, values offset per series) go to a
topic; the daemon (``PUBLISH_LAYOUT=auto``) publishes them in segments. Then:

* every series is listed by ``GET /series`` with exactly its rows and time range, and
  ``POST /predict`` with its ``series_id`` answers from its own rows: equal, for a sample of
  series, to the answer of a window holding that series alone;
* one record for one series makes the next generation write that series' segment file only:
  every other segment is the same file (same name, same inode) as before, and every other
  series' answer is unchanged, while the changed one's is not.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from contract.series import segment_of
from shm import Snapshot, segments_for
from tests._stack import StackHandle
from tests.concurrency._checks import figures
from tests.concurrency._kafka import Producer
from tests.concurrency._series import STEP_NS, T0_NS, stamp, value
from tests.concurrency._service import Service, running_service
from tests.webapp._support import ShmWindow, new_shm_window, remove_tree
from tests.webapp.conftest import make_app

pytestmark = pytest.mark.concurrency

SERIES = [f"meter-{n:03d}" for n in range(300)]
ROWS = 400
HORIZON = 12
SAMPLE = SERIES[::97]


def series_value(n: int, i: int) -> float:
    """Row ``i`` of series number ``n``: the sample's value, offset per series."""
    return value(i) + 100.0 * n


def record(n: int, i: int) -> tuple[bytes, bytes]:
    payload = {"time": stamp(i), "demand_mw": series_value(n, i)}
    return SERIES[n].encode(), json.dumps(payload).encode()


def series_table(n: int, rows: int) -> pa.Table:
    times = pa.array([T0_NS + i * STEP_NS for i in range(rows)], pa.int64())
    values = pa.array([series_value(n, i) for i in range(rows)], pa.float64())
    return pa.table({"time": times.cast(pa.timestamp("ns", tz="UTC")), "demand_mw": values})


def predictions(service: Service, series_id: str) -> list[dict[str, object]]:
    body = json.dumps({"series_id": series_id, "inference_length": HORIZON}).encode()
    reply = service.post("/predict", body)
    assert reply.status == 200, (series_id, reply.status, reply.body[:300])
    answer = reply.json()
    assert (answer["series_id"], answer["source"]) == (series_id, "window")
    points: list[dict[str, object]] = answer["predictions"]
    return points


def files_of(snapshot: Snapshot, directory: Path) -> dict[int, tuple[str, int]]:
    """``{segment: (file name, inode)}`` of the segment files ``snapshot`` reads."""
    out = {}
    for series_id in SERIES:
        _epoch, written, segment = snapshot.segment_key(series_id)
        name = f"seg-{written:020d}-{segment:07d}.arrow"
        out[segment] = (name, (directory / "segments" / name).stat().st_ino)
    return out


@pytest.fixture
def alone(artifact: bytes) -> Iterator[ShmWindow]:
    """A window that holds one series at a time, served by Flask's test client."""
    window, parent = new_shm_window(artifact)
    try:
        yield window
    finally:
        window.close()
        remove_tree(parent)


def test_each_series_is_served_from_its_own_rows_and_a_change_rewrites_one_segment(
    stack: StackHandle, artifact: bytes, alone: ShmWindow
) -> None:
    topic = stack.new_topic(1, prefix="many")
    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        workers=2,
        snapshot_rows=0,
        wait_model=False,
        daemon_env={"LOG_LEVEL": "WARNING"},
    ) as service:
        producer = Producer(stack, topic, linger_ms=5)
        try:
            started = time.monotonic()
            end = producer.send_keyed(
                record(n, i) for i in range(ROWS) for n in range(len(SERIES))
            )[-1]
            loaded = service.wait_snapshot(
                lambda s: (
                    s.metadata.get("offsets") == json.dumps({"0": end + 1})
                    and s.metadata.get("state") == "live"
                    and bool(s.metadata.get("model_file"))
                ),
                timeout=180,
                what="every keyed record published",
            )
            ingest_s = time.monotonic() - started
            service.wait_ready()
            segments = segments_for(len(SERIES))
            assert loaded.segmented and loaded.segments == segments
            assert loaded.series_count == len(SERIES) and loaded.num_rows == len(SERIES) * ROWS

            listed = service.get(f"/series?limit={len(SERIES)}").json()
            assert listed["total"] == len(SERIES) and listed["next_after"] is None
            assert [item["series_id"] for item in listed["items"]] == SERIES
            first, last = stamp(0), stamp(ROWS - 1)
            assert {(i["rows"], i["time_min"], i["time_max"]) for i in listed["items"]} == {
                (ROWS, first, last)
            }
            before = {sid: predictions(service, sid) for sid in SERIES}
            assert len({json.dumps(p) for p in before.values()}) == len(SERIES)
            client = make_app(alone).test_client()
            for sid in SAMPLE:
                alone.publish_table(series_table(SERIES.index(sid), ROWS))
                own = client.post("/predict", json={"inference_length": HORIZON}).get_json()
                assert own["predictions"] == before[sid], sid

            held = service.snapshot()
            assert held is not None
            files = files_of(held, service.shm_dir)
            moved = SERIES.index(SAMPLE[1])
            (offset,) = producer.send_keyed([record(moved, ROWS)])
            changed = service.wait_snapshot(
                lambda s: s.metadata.get("offsets") == json.dumps({"0": offset + 1}),
                timeout=30,
                what="the one new record published",
            )
            now = files_of(changed, service.shm_dir)
            after = {sid: predictions(service, sid) for sid in SERIES}
        finally:
            producer.close()
    segment = segment_of(SERIES[moved], segments)
    assert now[segment][0] == f"seg-{changed.generation:020d}-{segment:07d}.arrow"
    assert {s: f for s, f in now.items() if s != segment} == {
        s: f for s, f in files.items() if s != segment
    }
    assert {sid: after[sid] == before[sid] for sid in SERIES} == {
        sid: sid != SERIES[moved] for sid in SERIES
    }
    figures(
        "many-series-end-to-end",
        series=len(SERIES),
        rows=len(SERIES) * ROWS,
        segments=segments,
        ingest_s=round(ingest_s, 1),
        answers_checked=2 * len(SERIES),
        answers_equal_to_the_series_alone=len(SAMPLE),
        segment_files_rewritten_by_one_record=1,
    )
