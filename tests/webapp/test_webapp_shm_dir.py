"""What the web side makes of hostile files in the shm directory: never a 5xx, the newest valid
generation served, the skipped file named in /readyz and counted in /metrics, and data from
the future never ready."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pyarrow as pa
import pytest

from tests.webapp._support import ShmWindow
from tests.webapp.conftest import make_app

PROBLEM = "application/problem+json"
YEAR_NS = 365 * 86400 * 10**9


def name(generation: int) -> str:
    return f"gen-{generation:020d}.arrow"


def rewrite(path, table: pa.Table | None = None, **changes: bytes) -> None:  # type: ignore[no-untyped-def]
    """Rewrite the Arrow file at ``path`` with metadata ``changes`` (``shm_x`` -> ``shm.x``)."""
    with pa.memory_map(str(path)) as source:
        original = pa.ipc.open_file(source).read_all()
    meta = dict(original.schema.metadata or {})
    for key, value in changes.items():
        meta[key.replace("_", ".", 1).encode()] = value
    data = (table if table is not None else original).replace_schema_metadata(meta)
    path.unlink()
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)


def all_endpoints_answer(client) -> dict[str, int]:  # type: ignore[no-untyped-def]
    statuses = {
        "/predict": client.post("/predict", json={}).status_code,
        "/readyz": client.get("/readyz").status_code,
        "/cache": client.get("/cache").status_code,
        "/metrics": client.get("/metrics").status_code,
    }
    # 503 is the documented "no data / not ready" answer; a crash would be a 500.
    assert set(statuses.values()) <= {200, 503}, statuses
    return statuses


def skipped_metric(client) -> float:  # type: ignore[no-untyped-def]
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith("webapp_shm_skipped_files "):
            return float(line.split()[1])
    raise AssertionError("webapp_shm_skipped_files missing")


def plant_socket(path) -> None:  # type: ignore[no-untyped-def]
    path.unlink()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(path))
    finally:
        sock.close()


def replaced_by(make):  # type: ignore[no-untyped-def]
    def plant(path) -> None:  # type: ignore[no-untyped-def]
        path.unlink()
        make(path)

    return plant


PLANTERS = {
    "garbage": replaced_by(lambda p: p.write_bytes(b"garbage")),
    "symlink": replaced_by(lambda p: p.symlink_to(p.with_name("elsewhere"))),
    "socket": plant_socket,
    "fifo": replaced_by(lambda p: os.mkfifo(p, 0o640)),
    "generation-abc": lambda p: rewrite(p, shm_generation=b"abc"),
    "published-30-digits": lambda p: rewrite(p, shm_published_at_ns=b"9" * 30),
    "bad-metadata": lambda p: rewrite(p, **{"shm_epoch": b"x", "\xff": b"\xfe"}),
}


@pytest.mark.parametrize("kind", sorted(PLANTERS))
def test_a_bad_newest_file_is_skipped_named_and_counted(window, kind: str) -> None:  # type: ignore[no-untyped-def]
    window.publish(500)
    good = window.publish(500)
    bad = window.publish(500)
    window.write_status()
    PLANTERS[kind](window.directory / name(bad))
    client = make_app(window).test_client()
    statuses = all_endpoints_answer(client)
    assert statuses["/predict"] == 200
    assert client.post("/predict", json={}).get_json()["generation"] == good
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready" and body["skipped"][0].startswith(name(bad)), body
    assert str(window.directory) not in str(body)
    assert skipped_metric(client) == 1


@pytest.mark.parametrize(
    "time_column",
    [pa.array(["2000-01-01"] * 500), pa.array(range(500), type=pa.int64())],
    ids=["string", "int64"],
)
def test_a_newest_window_with_a_wrong_time_column_is_skipped(window, time_column) -> None:  # type: ignore[no-untyped-def]
    good = window.publish(500)
    bad = window.publish(500)
    window.write_status()
    path = window.directory / name(bad)
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
    rewrite(path, table.set_column(0, "time", time_column))
    client = make_app(window).test_client()
    assert all_endpoints_answer(client)["/cache"] == 200
    assert client.get("/cache").get_json()["generation"] == good
    assert "column 'time' is" in client.get("/readyz").get_json()["skipped"][0]


def test_only_refused_files_give_no_data_naming_them_not_a_500(window) -> None:  # type: ignore[no-untyped-def]
    gen = window.publish(500)
    path = window.directory / name(gen)
    path.unlink()
    path.symlink_to(window.directory / "elsewhere")
    client = make_app(window).test_client()
    statuses = all_endpoints_answer(client)
    assert statuses["/predict"] == statuses["/readyz"] == 503
    detail = client.get("/readyz").get_json()["detail"]
    assert name(gen) in detail and "symbolic links" in detail


def test_a_generation_from_the_future_is_not_ready(window) -> None:  # type: ignore[no-untyped-def]
    gen = window.publish(500)
    window.write_status(heartbeat_ns=time.time_ns())
    rewrite(
        window.directory / name(gen),
        shm_published_at_ns=str(time.time_ns() + 50 * YEAR_NS).encode(),
    )
    client = make_app(window).test_client()
    resp = client.get("/readyz")
    assert resp.status_code == 503 and resp.headers["X-Not-Ready"] == "future data"
    assert resp.mimetype == PROBLEM
    assert client.post("/predict", json={}).get_json()["data_age_ms"] == 0


def test_a_wiped_directory_with_a_new_publisher_is_followed(window, artifact) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        window.publish(500)
    window.write_status()
    client = make_app(window).test_client()
    assert client.get("/cache").get_json()["generation"] == 5
    window.close()
    shutil.rmtree(window.directory)
    fresh = ShmWindow(window.directory, artifact)
    try:
        assert fresh.publish(600) == 1
        fresh.write_status()
        time.sleep(0.3)  # the reader re-checks the hint's identity every 0.25 s
        body = client.get("/cache").get_json()
        assert body["generation"] == 1 and body["rows"] == 600
    finally:
        fresh.close()
