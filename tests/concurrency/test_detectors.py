"""The suite's own detectors can fail: the HTTP classifier, the regression check and the
generation recorder are shown a truncated response, a worker going back and a generation
whose data does not match its checksum."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

from shm import Publisher, SegmentsChecksum, segment_checksum, table_checksum
from tests.concurrency._checks import regressions
from tests.concurrency._http import call
from tests.concurrency._recorder import Recorder
from tests.concurrency._series import table_of
from tests.shm._tables import split_by_segment

pytestmark = pytest.mark.concurrency

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"


@contextmanager
def one_shot_server(reply: bytes | None, *, reset: bool = False) -> Iterator[int]:
    """Accepts one connection, reads the request, sends ``reply`` (None: nothing), closes
    (with an RST when ``reset``)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def serve() -> None:
        conn, _ = sock.accept()
        with conn:
            conn.recv(65536)
            if reply is not None:
                conn.sendall(reply)
            if reset:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        thread.join(5)
        sock.close()


@pytest.mark.parametrize(
    ("reply", "reset", "kind"),
    [
        (OK + b'{"a": true}', False, "ok"),
        (OK + b'{"a": t', False, "truncated"),
        (OK + b'{"a": t', True, "truncated"),
        (OK[:30], False, "truncated"),
        (None, False, "closed"),
        (None, True, "closed"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            False,
            "ok",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False, "truncated"),
    ],
)
def test_the_http_classifier_tells_every_ending_apart(
    reply: bytes | None, reset: bool, kind: str
) -> None:
    with one_shot_server(reply, reset=reset) as port:
        assert call(port, "POST", "/predict", b"{}", timeout=5).kind == kind


def test_a_closed_port_is_a_refusal() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    try:
        assert call(sock.getsockname()[1], "GET", "/").kind == "refused"
    finally:
        sock.close()


def test_the_regression_check_flags_a_worker_going_back_only() -> None:
    # (pid, generation, sent_ns, done_ns)
    assert regressions([(1, 5, 0, 10), (1, 4, 20, 30)]) == [
        "worker 1 answered generation 4 after 5"
    ]
    # Overlapping requests may be answered in either order; another worker may lag.
    assert regressions([(1, 5, 0, 10), (1, 4, 5, 30), (2, 3, 40, 50)]) == []


def test_the_recorder_reports_data_that_does_not_match_its_checksum(shm_dir: Path) -> None:
    with Publisher(shm_dir) as publisher:
        good = table_of(range(100))
        publisher.publish(good, metadata={"window_checksum": table_checksum(good), "rows": "100"})
        with Recorder(shm_dir, shm_dir.parent / "records.jsonl") as recorder:
            bad = table_of(range(1, 101))
            publisher.publish(
                bad, metadata={"window_checksum": table_checksum(good), "rows": "100"}
            )
            deadline = time.monotonic() + 10
            while 2 not in recorder.records() and time.monotonic() < deadline:
                time.sleep(0.02)
            records = recorder.records()
    assert records[1]["actual"] == records[1]["window_checksum"]
    assert records[2]["actual"] != records[2]["window_checksum"]


def test_the_recorder_reports_a_segmented_generation_that_does_not_match_its_checksum(
    shm_dir: Path,
) -> None:
    table = table_of(range(100))
    ids = pa.array([f"s{i % 7}" for i in range(100)], pa.string())
    keyed = table.add_column(0, "series_id", ids).sort_by([("series_id", "ascending")])
    parts = split_by_segment(keyed, 4)
    right = SegmentsChecksum(4)
    for segment, part in parts.items():
        right.set(segment, segment_checksum(part) if part is not None and part.num_rows else None)
    with Publisher(shm_dir) as pub, Recorder(shm_dir, shm_dir.parent / "records.jsonl") as recorder:
        pub.publish_segments(parts, segments=4, metadata={"window_checksum": right.hexdigest()})
        pub.publish_segments(parts, segments=4, metadata={"window_checksum": "0" * 32})
        deadline = time.monotonic() + 10
        while 2 not in recorder.records() and time.monotonic() < deadline:
            time.sleep(0.02)
        records = recorder.records()
    assert records[1]["segmented"] and records[1]["actual"] == records[1]["window_checksum"]
    assert records[2]["actual"] != records[2]["window_checksum"]
