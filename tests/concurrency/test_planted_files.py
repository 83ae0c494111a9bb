"""Scenario: hostile files planted in the shm directory under load.

The daemon replays the sample into Gunicorn's four workers while clients hit ``/cache`` and
``/predict``. Planted: garbage under a generation number far above the daemon's, a valid copy
of a real generation under a higher number, published 50 years ahead with the live epoch, and
garbage under the names the daemon is about to use. Every answer must be a complete non-5xx
reply, every worker must keep following the daemon's new generations, none may serve a planted
file, and the daemon must neither fail nor delete the planted files. It runs with the daemon
publishing inline files and segments; with segments the copy is of a manifest (naming the
real segment files) and garbage also takes the names of the segment files the daemon is about
to write.
"""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pytest

from contract.defaults import SERIES_COLUMN
from tests.concurrency._checks import json_ok
from tests.concurrency._http import Load, summarize
from tests.concurrency._service import running_service, wait_until

pytestmark = pytest.mark.concurrency

WORKERS = 4
FOLLOW_S = 15.0
HUGE = 10**12


def name(generation: int) -> str:
    return f"gen-{generation:020d}.arrow"


def plant_future_copy(directory: Path, source: Path, generation: int) -> Path:
    """A valid Arrow file: ``source``'s rows (x10 when it holds the values, not a manifest)
    with its metadata (live epoch included), renumbered and published 50 years from now."""
    with pa.memory_map(str(source)) as mapped:
        table = pa.ipc.open_file(mapped).read_all()
    meta = dict(table.schema.metadata or {})
    meta[b"shm.generation"] = str(generation).encode()
    meta[b"shm.published_at_ns"] = str(time.time_ns() + 50 * 365 * 86400 * 10**9).encode()
    value = table.schema.get_field_index(SERIES_COLUMN)
    scaled = (
        table.set_column(value, table.field(value), pa.compute.multiply(table.column(value), 10.0))
        if value >= 0
        else table
    )
    target = directory / name(generation)
    tmp = directory.parent / "planted.arrow"
    with pa.OSFile(str(tmp), "wb") as sink:
        data = scaled.replace_schema_metadata(meta)
        with pa.ipc.new_file(sink, data.schema) as writer:
            writer.write_table(data)
    tmp.replace(target)
    return target


@pytest.mark.parametrize("layout", ["inline", "segmented"])
def test_planted_newest_and_future_files_under_load(artifact: bytes, layout: str) -> None:
    with running_service(artifact, workers=WORKERS, max_age_ms=5000, layout=layout) as service:
        pids = service.worker_pids()
        directory = service.shm_dir
        with (
            Load(service.port, "GET", "/cache", threads=4) as cache,
            Load(service.port, "POST", "/predict", b"{}", threads=2) as predict,
        ):
            time.sleep(1.0)
            newest = max(directory.glob("gen-*.arrow"))
            planted = [
                plant_future_copy(directory, newest, HUGE + 1),
                directory / name(HUGE),
            ]
            planted[1].write_bytes(b"garbage planted under a high generation number")
            at_plant = service.generation()
            for ahead in (3, 4):
                path = directory / name(at_plant + ahead)
                # Exclusive: never truncate a real generation the daemon got to first (the
                # workers map it).
                with path.open("xb") as sink:
                    sink.write(b"garbage under a name the daemon is about to use")
                planted.append(path)
            if layout == "segmented":  # the one series is segment 0 of 1
                for ahead in (5, 6):
                    path = directory / "segments" / f"seg-{at_plant + ahead:020d}-0000000.arrow"
                    with path.open("xb") as sink:
                        sink.write(b"garbage under a segment file name the daemon will use")
                    planted.append(path)
            planted_ns = time.monotonic_ns()

            def everyone_followed() -> bool:
                newer = {
                    r.json()["pid"]
                    for r in json_ok(cache.results())
                    if r.sent_ns > planted_ns and r.json()["generation"] > at_plant + 6
                }
                return newer >= pids

            wait_until(everyone_followed, timeout=FOLLOW_S, what="every worker past the plants")
            time.sleep(0.5)
        answers = cache.results() + predict.results()
        counts = summarize(answers)
        errors = service.error_lines() if service.web is not None else []
        assert set(counts) <= {"ok 200"}, (counts, errors)
        generations = {r.json()["generation"] for r in json_ok(cache.results())}
        assert max(generations) < HUGE, "a worker served a planted file"
        for reply in json_ok(predict.results()):
            assert reply.json()["generation"] < HUGE
        ready = service.get("/readyz")
        assert ready.status == 200, ready.body[:500]
        skipped = ready.json().get("skipped", [])
        assert any(name(HUGE) in reason for reason in skipped), skipped
        metrics = service.metrics()
        assert metrics.get("webapp_shm_skipped_files", 0) >= 2, metrics
        assert service.daemon.running
        assert all(path.exists() for path in planted)
        status = service.status()
        assert status is not None and status["state"] == "live", status
        wait_until(
            lambda: service.generation() > at_plant + 6, timeout=5, what="the daemon moving on"
        )
