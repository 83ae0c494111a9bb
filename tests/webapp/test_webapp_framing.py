"""Hostile HTTP framing against a real Gunicorn, for every worker class the service supports.

Requests are written byte for byte (``tests.webapp._rawhttp``): broken chunked bodies reach
the app's body read, conflicting or malformed framing headers are refused by Gunicorn before
the app runs. Either way the client gets a 400 problem+json, never a 5xx, never an empty reply.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.webapp._rawhttp import RawReply, exchange, strict_json
from tests.webapp._support import GunicornServer, new_shm_window, remove_tree

# Command-line options override gunicorn.conf.py; sync needs --threads 1 (with more threads
# Gunicorn silently runs gthread instead).
WORKER_CLASSES = {
    "sync": ("--worker-class", "sync", "--threads", "1"),
    "gthread": ("--worker-class", "gthread", "--threads", "2"),
    "gevent": ("--worker-class", "gevent"),
}
HEAD = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(scope="module", params=sorted(WORKER_CLASSES))
def server(request: pytest.FixtureRequest, artifact: bytes) -> Iterator[GunicornServer]:
    window, parent = new_shm_window(artifact)
    window.publish(1000)
    window.write_status()
    srv = GunicornServer(
        {"SHM_DIR": str(window.directory), "WEB_ACCESS_LOG": "-", "LOG_LEVEL": "INFO"},
        workers=1,
        args=WORKER_CLASSES[request.param],
    )
    try:
        srv.wait_ready()
        assert f"Using worker: {request.param}" in srv.log.read_text()
        yield srv
    finally:
        srv.stop()
        window.close()
        remove_tree(parent)


def assert_problem(reply: RawReply, status: int, slug: str) -> dict:
    assert reply.status == status, reply.raw[:400]
    assert reply.headers["content-type"] == "application/problem+json"
    problem = strict_json(reply.body)
    assert problem["status"] == status and problem["type"] == f"/problems/{slug}"
    assert problem["title"] and problem["detail"]
    assert "Traceback" not in problem["detail"]
    return problem


BAD_CHUNKED = {
    "negative-size": b"-2\r\n{}\r\n0\r\n\r\n",
    "non-hex-size": b"zz\r\n{}\r\n0\r\n\r\n",
    "0x-prefixed-size": b"0x2\r\n{}\r\n0\r\n\r\n",
    "size-with-trailing-space": b"2 \r\n{}\r\n0\r\n\r\n",
    "bad-extension": b"2;=x\r\n{}\r\n0\r\n\r\n",
    "bare-cr-in-extension": b"2;a\rb\r\n{}\r\n0\r\n\r\n",
    "missing-chunk-crlf": b"2\r\n{}XX0\r\n\r\n",
    "bad-trailer": b"2\r\n{}\r\n0\r\nno colon here\r\n\r\n",
    "ends-inside-a-chunk": b"10\r\n{}",
    "ends-before-the-last-chunk": b"2\r\n{}\r\n",
}


@pytest.mark.parametrize("body", BAD_CHUNKED.values(), ids=BAD_CHUNKED.keys())
def test_a_malformed_chunked_body_is_a_400_problem(server, body):
    reply = exchange(server.port, CHUNKED + body)
    problem = assert_problem(reply, 400, "bad-request")
    assert "chunk" in problem["detail"] or "body" in problem["detail"]
    assert reply.headers.get("connection") == "close"


def test_a_well_formed_chunked_body_is_served(server):
    reply = exchange(server.port, CHUNKED + b"2;ext=1\r\n{}\r\n0\r\nX-T: 1\r\n\r\n")
    assert reply.status == 200, reply.raw[:400]
    assert strict_json(reply.body)["predictions"]


BAD_FRAMING = {
    "content-length-and-chunked": HEAD
    + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "duplicate-content-length": HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "plus-signed-content-length": HEAD + b"Content-Length: +2\r\n\r\n{}",
    "minus-signed-content-length": HEAD + b"Content-Length: -2\r\n\r\n{}",
    "chunked-then-identity": HEAD
    + b"Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "transfer-encoding-on-http-1.0": b"POST /predict HTTP/1.0\r\nHost: t\r\n"
    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "two-host-headers": b"POST /predict HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
    b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "bad-request-line": b"POST /predict HTTP/1.1 extra\r\nHost: t\r\n\r\n",
    "header-without-colon": HEAD + b"Broken header\r\nContent-Length: 2\r\n\r\n{}",
    "unknown-transfer-coding": HEAD + b"Transfer-Encoding: x-custom\r\n\r\n{}",
}


@pytest.mark.parametrize("request_bytes", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
def test_a_framing_error_is_a_400_problem_not_an_empty_reply(server, request_bytes):
    reply = exchange(server.port, request_bytes)
    assert reply.raw, "empty reply"
    assert_problem(reply, 400, "bad-request")
    assert reply.headers.get("connection") == "close"


def test_a_framing_error_is_in_the_access_log_with_its_status(server):
    path = f"/probe-{uuid.uuid4().hex}"
    request_bytes = BAD_FRAMING["duplicate-content-length"].replace(b"/predict", path.encode())
    assert_problem(exchange(server.port, request_bytes), 400, "bad-request")
    lines = [strict_json(x.encode()) for x in server.log.read_text().splitlines() if x[:1] == "{"]
    access = [x for x in lines if x.get("event") == "access" and x.get("path") == path]
    assert [x["status"] for x in access] == [400]
