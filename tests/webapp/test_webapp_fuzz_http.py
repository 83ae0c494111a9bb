"""Property tests against a real Gunicorn (gunicorn.conf.py defaults): raw HTTP framing,
hostile JSON shapes and hostile query strings of ``GET /series``, sent byte for byte over a
socket.

Whatever arrives, the reply is never empty, never a 5xx (a transfer coding Gunicorn does not
implement is a 400 too, see ``gunicorn.conf.py``), and its body is strict
JSON (no NaN, no Infinity) with a JSON media type. JSON shapes start from a valid body of
400 rows and change one element, field, type or nesting, so that they reach validation and
the model rather than stopping at the first check.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.webapp._rawhttp import RawReply, exchange, strict_json
from tests.webapp._support import GunicornServer, new_shm_window, remove_tree

ROWS = 400
START = 962_409_600  # 2000-07-01T00:00:00Z
JSON_TYPES = {"application/json", "application/problem+json"}
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def server(artifact: bytes) -> Iterator[GunicornServer]:
    window, parent = new_shm_window(artifact)
    window.publish(1000)
    window.write_status()
    # The access log is on, as in production: it runs in Gunicorn's error path too.
    srv = GunicornServer({"SHM_DIR": str(window.directory), "WEB_ACCESS_LOG": "-"}, workers=2)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
        window.close()
        remove_tree(parent)


def check_reply(reply: RawReply) -> dict:
    assert reply.raw, "empty reply"
    event(f"status {reply.status}")  # shown by --hypothesis-show-statistics
    assert reply.status >= 200, reply.raw[:300]
    assert reply.status < 500, reply.raw[:300]
    assert reply.headers.get("content-type") in JSON_TYPES, reply.raw[:300]
    body = strict_json(reply.body)
    assert isinstance(body, dict)
    if reply.status >= 400:
        assert body["status"] == reply.status and body["detail"]
    return body


# -- framing -----------------------------------------------------------------------------------

_chunk_sizes = st.sampled_from(
    ["{n:x}", "{n:X}", "0{n:x}", "-{n}", "0x{n:x}", "{n:x} ", " {n:x}", "zz"]
)
_extensions = st.sampled_from(["", ";a=b", ';a="q"', ";", ";=", ";a\rb", "; a=b", ";a=b;c"])
_terminators = st.sampled_from(["\r\n", "", "\n", "XX"])
_trailers = st.sampled_from(["", "X-T: 1\r\n", "no colon\r\n", " folded\r\n", "X-T:\x01\r\n"])


@st.composite
def chunked_bodies(draw: st.DrawFn, payload: bytes) -> bytes:
    pieces = draw(st.integers(1, 3))
    step = max(1, len(payload) // pieces)
    out = b""
    for i in range(0, len(payload), step):
        part = payload[i : i + step]
        size = draw(_chunk_sizes).format(n=len(part))
        out += f"{size}{draw(_extensions)}\r\n".encode() + part + draw(_terminators).encode()
    out += b"0\r\n" + draw(_trailers).encode() + b"\r\n"
    if draw(st.booleans()) and draw(st.booleans()):
        out = out[: draw(st.integers(0, len(out)))]  # the client stops mid-body
    return out


_content_lengths = st.sampled_from(
    ["{n}", "+{n}", "-{n}", "{n}, {n}", " {n}", "0x{n:x}", "{m}", "{k}"]
)
_transfer_codings = st.sampled_from(
    [
        "chunked",
        "Chunked",
        "chunked, identity",
        "identity, chunked",
        "gzip, chunked",
        "chunked, chunked",
        "identity",
        "gzip",
        "x-custom",
        "chunked, x-custom",
    ]
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """A POST /predict with drawn framing, as bytes."""
    payload = draw(st.sampled_from([b"{}", b'{"inference_length": 3}', b"{", b""]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    lines = [f"POST /predict {version}"]
    lines += [f"Host: {h}" for h in draw(st.sampled_from([["t"], ["a", "b"], []]))]
    lines += draw(st.sampled_from([["Content-Type: application/json"], []]))
    content_lengths = draw(st.lists(_content_lengths, max_size=2))
    codings = draw(st.lists(_transfer_codings, max_size=2))
    n = len(payload)
    lines += [f"Content-Length: {c.format(n=n, m=max(0, n - 1), k=n + 5)}" for c in content_lengths]
    lines += [f"Transfer-Encoding: {c}" for c in codings]
    if draw(st.booleans()):
        lines.append("Expect: 100-continue")
    chunked = any(c.lower().split(",")[-1].strip() == "chunked" for c in codings)
    body = draw(chunked_bodies(payload)) if chunked else payload
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@FUZZ
@given(request_bytes=raw_requests())
def test_any_framing_gets_a_json_reply_and_never_a_5xx(server, request_bytes):
    check_reply(exchange(server.port, request_bytes))


# -- JSON shapes -------------------------------------------------------------------------------


def _series() -> dict[str, list]:
    times = [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + 1800 * i)) for i in range(ROWS)
    ]
    return {"time": times, "demand_mw": [30_000.0 + 10 * math.sin(i / 7) for i in range(ROWS)]}


_extreme_numbers = st.sampled_from(
    [
        *("1.7e308", "-1.7e308", "1.7976931348623157e308", "1e309", "-1e400", "5e-324"),
        *("1e-400", "NaN", "Infinity", "-Infinity", "-0.0", "0"),
        *("9" * 400, "-" + "9" * 4300, "9" * 4301),
    ]
) | st.floats().map(lambda x: json.dumps(x, allow_nan=True))


def _nested(depth: int, inner: str, kind: str) -> str:
    if kind == "array":
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + (inner or "0") + "}" * depth


_nestings = st.builds(
    _nested,
    st.integers(1, 3000),
    st.sampled_from(["", "1", '"x"', "null"]),
    st.sampled_from(["array", "object"]),
)
_many_keys = st.integers(1, 3000).map(lambda n: "{" + ",".join(f'"k{i}":0' for i in range(n)) + "}")
_wild_values = st.one_of(
    _extreme_numbers,
    _nestings,
    _many_keys,
    st.text(max_size=40).map(json.dumps),
    st.sampled_from(["true", "null", "[]", "{}", '"2000-07-01T00:00:00"', '"2000-07-01"']),
)


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A valid 400-row body with one drawn change, as JSON text."""
    body: dict = {"index_col": "time", "data": _series(), "inference_length": 3}
    where = draw(
        st.sampled_from(
            ["time", "demand_mw", "every_value", "length", "index_col", "series_id", "top", "data"]
        )
    )
    wild = draw(_wild_values)
    if where in {"time", "demand_mw"}:
        body["data"][where][draw(st.integers(0, ROWS - 1))] = "@@"
    elif where == "every_value":
        body["data"]["demand_mw"] = ["@@"] * ROWS
    elif where == "length":
        body["inference_length"] = "@@"
    elif where == "index_col":
        body["index_col"] = "@@"
    elif where == "series_id":
        body["series_id"] = "@@"
    elif where == "top":
        body[draw(st.text(max_size=10))] = "@@"
    else:
        body["data"][draw(st.text(max_size=10))] = "@@"
    return json.dumps(body).replace('"@@"', wild).encode()


def _post(body: bytes, *, chunked: bool) -> bytes:
    head = "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
    if chunked:
        return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + (
            f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        )
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


@FUZZ
@given(body=mutated_bodies(), chunked=st.booleans())
def test_any_json_shape_gets_strict_json_and_never_a_5xx(server, body, chunked):
    reply = exchange(server.port, _post(body, chunked=chunked))
    payload = check_reply(reply)
    assert reply.status in {200, 400, 413, 422}, reply.raw[:300]
    if reply.status == 422:
        event(f"code {payload['errors'][0]['code']}")
    if reply.status == 200:
        assert all(math.isfinite(p["value"]) for p in payload["predictions"])


# -- GET /series query strings ------------------------------------------------------------------

_names = st.sampled_from(["limit", "after", "Limit", "after[]", "x", "", "%6Cimit"])
_values = st.one_of(
    st.integers(-5, 2000).map(str),
    st.sampled_from(["", "+5", "1e2", "0x10", "%207", "+7", "%D9%A3", "%FF", "%C3", "%00"]),
    st.text(max_size=140).map(lambda t: quote(t, safe="")),
    st.binary(max_size=20).map(lambda b: quote(b, safe="")),
)
_pairs = st.tuples(_names, _values).map(lambda p: f"{p[0]}={p[1]}") | _names
_queries = st.lists(_pairs, max_size=4).map("&".join)


@FUZZ
@given(query=_queries, raw_byte=st.one_of(st.none(), st.none(), st.integers(0x80, 0xFF)))
def test_any_series_query_gets_a_json_reply_and_never_a_5xx(server, query, raw_byte):
    target = f"/series?{query}".encode()
    if raw_byte is not None:  # a byte a client should have percent-encoded: Gunicorn's 400
        target += b"&after=" + bytes([raw_byte])
    reply = exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    body = check_reply(reply)
    assert reply.status in {200, 400, 422}, reply.raw[:300]
    if reply.status == 200:
        assert set(body) == {"total", "items", "next_after"}
        assert body["total"] == 1 and len(body["items"]) <= 1
    elif reply.status == 422:
        assert body["errors"] and all(e["field"] for e in body["errors"])
