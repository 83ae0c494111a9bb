"""The app under a real multi-worker Gunicorn (gunicorn.conf.py) on a real shm directory."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families

from tests.webapp._bodies import bodies
from tests.webapp._support import GunicornServer, ShmWindow, new_shm_window, remove_tree

# Every test here starts a real Gunicorn: not a unit test (make test-fast leaves them out).
pytestmark = pytest.mark.server

WORKERS = 3
MAX_BODY = 65_536
MAX_AGE_MS = 1_500


@pytest.fixture(scope="module")
def served(artifact: bytes) -> Iterator[tuple[GunicornServer, ShmWindow]]:
    window, parent = new_shm_window(artifact)
    window.publish(1000)
    window.write_status()
    server = GunicornServer(
        {
            "SHM_DIR": str(window.directory),
            "MAX_BODY_BYTES": str(MAX_BODY),
            "MAX_DATA_AGE_MS": str(MAX_AGE_MS),
            "MAX_ROWS": "1000",
            "WEB_ACCESS_LOG": "-",
            "LOG_LEVEL": "INFO",
        },
        workers=WORKERS,
    )
    try:
        server.wait_ready()
        yield server, window
    finally:
        server.stop()
        window.close()
        remove_tree(parent)
    assert server.proc.returncode == 0
    # Every line the workers wrote, to their last, is whole JSON: no teardown traceback.
    stray = [line for line in server.final_log.splitlines() if not line.startswith("{")]
    assert stray == [], stray[:10]


def keep_fresh(window: ShmWindow) -> None:
    window.write_status(generation=window.publisher.generation)


def spread(server: GunicornServer, path: str, *, until_pids: int, limit: int = 300) -> list[dict]:
    """GET ``path`` on new connections until ``until_pids`` distinct workers have answered."""
    replies: list[dict] = []
    pids: set[int] = set()
    for _ in range(limit):
        body = server.request("GET", path).json()
        replies.append(body)
        pids.add(body["pid"])
        if len(pids) >= until_pids:
            break
    return replies


def test_predict_answers_with_generation_header_and_forecast(served):
    server, window = served
    keep_fresh(window)
    reply = server.post_json("/predict", {"inference_length": 4})
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert reply.headers["x-cache-generation"] == str(body["generation"])
    assert body["generation"] == window.publisher.generation
    assert len(body["predictions"]) == 4


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 8192):
        yield data[i : i + 8192]


DUPLICATES = {
    "index_col": "time",
    "data": {"time": ["2018-02-06T00:00:00"] * 400, "demand_mw": [1.0] * 400},
}
JSON = {"Content-Type": "application/json"}
ERROR_CASES = [
    # (method, path, body, headers, status, slug, error code of errors[0] or None)
    (
        "POST",
        "/predict",
        json.dumps(DUPLICATES).encode(),
        JSON,
        422,
        "validation-error",
        "duplicate_timestamps",
    ),
    ("POST", "/predict", b'{"inference_length": 0}', JSON, 422, "validation-error", "out_of_range"),
    (
        "POST",
        "/predict",
        b'{"inference_length": 49}',
        JSON,
        422,
        "validation-error",
        "out_of_range",
    ),
    ("POST", "/predict", b'{"horizon": 3}', JSON, 422, "validation-error", "unknown_field"),
    (
        "POST",
        "/predict",
        b'{"data": {"time": ["2000-01-01T00:00:00Z"], "demand_mw": [NaN]}}',
        JSON,
        422,
        "validation-error",
        "too_few_rows",
    ),
    ("POST", "/predict", b"[]", JSON, 422, "validation-error", "not_an_object"),
    ("POST", "/predict", b"{not json", JSON, 400, "invalid-json", None),
    ("POST", "/predict", b'{"a":1,"a":2}', JSON, 400, "invalid-json", None),
    (
        "POST",
        "/predict",
        b"{}",
        {"Content-Type": "text/plain"},
        415,
        "unsupported-media-type",
        None,
    ),
    ("POST", "/predict", b"{}", {}, 415, "unsupported-media-type", None),
    ("POST", "/predict", b"[" + b" " * MAX_BODY + b"]", JSON, 413, "payload-too-large", None),
    ("GET", "/predict", None, {}, 405, "method-not-allowed", None),
    ("DELETE", "/cache", None, {}, 405, "method-not-allowed", None),
    ("GET", "/nothing-here", None, {}, 404, "not-found", None),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "slug", "code"),
    ERROR_CASES,
    ids=[f"{c[4]}-{c[5]}-{c[6] or c[0]}" for c in ERROR_CASES],
)
def test_every_error_is_the_documented_problem_json(
    served, method, path, body, headers, status, slug, code
):
    server, window = served
    keep_fresh(window)
    reply = server.request(method, path, body, headers)
    assert reply.status == status, reply.body[:300]
    assert reply.headers["content-type"] == "application/problem+json"
    problem = reply.json()
    assert problem["type"] == f"/problems/{slug}" and problem["status"] == status
    assert problem["title"] and problem["detail"]
    if code is not None:
        assert problem["errors"][0]["code"] == code
    if status == 405:
        assert "allow" in reply.headers
    spec = server.request("GET", "/openapi.json").json()
    ops = spec["paths"].get(path, {})
    if method.lower() in ops:
        assert str(status) in ops[method.lower()]["responses"]
    assert (
        f"/problems/{slug}"
        in spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    )


def test_chunked_body_over_the_limit_is_413(served):
    server, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        payload = b'{"x": "' + b"a" * (MAX_BODY * 2) + b'"}'
        conn.request("POST", "/predict", body=_chunks(payload), headers=JSON, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        assert resp.getheader("Content-Type") == "application/problem+json"
        assert str(MAX_BODY) in json.loads(resp.read())["detail"]
    finally:
        conn.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_answered_with_connection_close(served, chunked):
    # Far past the 64 KiB Gunicorn drains: without the close, the client would reuse a
    # connection the server drops, and its next request would fail.
    server, window = served
    keep_fresh(window)
    payload = b'{"x": "' + b"a" * (MAX_BODY + 256 * 1024) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        if chunked:
            conn.request(
                "POST", "/predict", body=_chunks(payload), headers=JSON, encode_chunked=True
            )
        else:
            conn.request("POST", "/predict", body=payload, headers=JSON)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 413
        assert resp.getheader("Connection") == "close"
        # http.client reconnects after "close"; a stale keep-alive socket would raise instead.
        conn.request("POST", "/predict", body=b"{}", headers=JSON)
        again = conn.getresponse()
        again.read()
        assert again.status == 200
    finally:
        conn.close()


def test_a_client_still_sending_after_a_413_gets_the_answer_not_a_reset(served):
    # A slow client is still sending its oversized body well after the server answered: the
    # server must drain it (within its bounds) rather than close on unread bytes, which
    # resets the connection and can destroy the answer before the client reads it.
    server, window = served
    keep_fresh(window)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 16384
        for _ in range(MAX_BODY // len(chunk) + 24):  # 384 KiB past the limit, slowly
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.005)
        sock.sendall(b"0\r\n\r\n")
        reply = b""
        while (data := sock.recv(65536)) != b"":
            reply += data
    finally:
        sock.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), reply[:200]
    assert str(MAX_BODY) in json.loads(body)["detail"]


def test_refused_small_body_keeps_the_connection_alive(served):
    server, window = served
    keep_fresh(window)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/predict", body=b'{"inference_length": ', headers=JSON)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 400
        assert resp.getheader("Connection") != "close"
        first_socket = conn.sock
        conn.request("POST", "/predict", body=b"{}", headers=JSON)
        again = conn.getresponse()
        again.read()
        assert again.status == 200
        assert conn.sock is first_socket
    finally:
        conn.close()


def test_after_a_publish_every_worker_answers_from_the_new_generation(served):
    server, window = served
    assert len(server.worker_pids()) == WORKERS
    spread(server, "/cache", until_pids=WORKERS)  # every worker has mapped the old generation
    new = window.publish(1000, end=3500)
    keep_fresh(window)
    replies = spread(server, "/cache", until_pids=WORKERS)
    assert {r["pid"] for r in replies} == server.worker_pids()
    assert {r["generation"] for r in replies} == {new}
    assert {r["time_max"] for r in replies} == {"2000-08-16T21:30:00Z"}
    assert all(r["checksum_matches"] for r in replies)


def test_readyz_flips_to_503_when_data_goes_stale_and_back(served):
    server, window = served
    keep_fresh(window)
    assert server.request("GET", "/readyz").status == 200
    time.sleep(MAX_AGE_MS / 1000 + 0.3)  # no heartbeat, no publish
    for _ in range(2 * WORKERS):
        reply = server.request("GET", "/readyz")
        assert reply.status == 503
        assert reply.headers["retry-after"] == "1" and reply.headers["x-not-ready"] == "stale"
        assert reply.json()["detail"].startswith("stale")
    keep_fresh(window)
    for _ in range(2 * WORKERS):
        assert server.request("GET", "/readyz").status == 200


def _scrape(server: GunicornServer) -> dict[tuple[str, tuple], float]:
    text = server.request("GET", "/metrics").body.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_aggregate_requests_from_all_workers(served):
    server, window = served
    keep_fresh(window)
    key = (
        "webapp_http_requests_total",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    before = _scrape(server).get(key, 0.0)
    replies = spread(server, "/cache", until_pids=WORKERS)
    assert len({r["pid"] for r in replies}) == WORKERS
    for _ in range(40):
        assert server.request("GET", "/healthz").status == 200
    after = _scrape(server)
    assert after[key] - before == 40
    worker_gens = {
        dict(labels)["pid"]: value
        for (name, labels), value in after.items()
        if name == "webapp_worker_generation"
    }
    assert {int(pid) for pid in worker_gens} == server.worker_pids()
    assert set(worker_gens.values()) == {window.publisher.generation}
    assert after[("webapp_generation", ())] == window.publisher.generation
    assert after[("daemon_events_total", ())] == 7
    hist = (
        "webapp_http_request_duration_seconds_count",
        (("route", "/healthz"), ("status", "200")),
    )
    assert after[hist] >= 40


def test_access_log_lines_are_json_with_the_generation(served):
    server, window = served
    keep_fresh(window)
    gen = server.post_json("/predict", {}).json()["generation"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in server.log.read_text().splitlines() if x.startswith("{")]
        hits = [x for x in lines if x.get("event") == "access" and x.get("path") == "/predict"]
        if any(x["generation"] == gen and x["status"] == 200 for x in hits):
            break
        time.sleep(0.1)
    else:
        pytest.fail("no access line with the generation")
    assert all("data" not in x and "body" not in x for x in hits)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=bodies)
def test_random_bodies_never_yield_5xx_under_gunicorn(served, body):
    server, _ = served
    reply = server.request("POST", "/predict", json.dumps(body, allow_nan=True).encode(), JSON)
    assert reply.status in {200, 404, 413, 422}, reply.body[:300]
    if reply.status == 404:  # a series_id the window does not hold, without data
        assert reply.json()["type"] == "/problems/unknown-series"


def _series(n: int = 400) -> dict[str, list]:
    start = 962409600  # 2000-07-01T00:00:00Z
    times = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 1800 * i)) for i in range(n)]
    return {"time": times, "demand_mw": [30_000.0 + i for i in range(n)]}


def _mutated(change) -> bytes:
    data = _series()
    change(data)
    return json.dumps({"index_col": "time", "data": data, "inference_length": 3}).encode()


VALIDATION_CASES = {
    "mixed_timezones": lambda d: d["time"].__setitem__(5, d["time"][5].rstrip("Z")),
    "unparseable_time": lambda d: d["time"].__setitem__(7, "31/12/2000"),
    "irregular_spacing": lambda d: d["time"].__setitem__(9, d["time"][9].replace(":00Z", ":07Z")),
    "not_a_number": lambda d: d["demand_mw"].__setitem__(3, "12"),
    "not_finite": lambda d: d["demand_mw"].__setitem__(3, float("inf")),
    "length_mismatch": lambda d: d["demand_mw"].pop(),
    "missing_column": lambda d: d.pop("demand_mw"),
    "unknown_column": lambda d: d.__setitem__("price", [1.0] * 400),
    "not_an_array": lambda d: d.__setitem__("demand_mw", {"a": 1}),
    "too_few_rows": lambda d: [d[k].__delitem__(slice(300, None)) for k in ("time", "demand_mw")],
    "too_many_rows": lambda d: [d[k].extend(d[k] * 2) for k in ("time", "demand_mw")],
    "duplicate_timestamps": lambda d: d["time"].__setitem__(1, d["time"][0]),
}
# The field each case must name: the element for a bad value, the column for a bad shape.
VALIDATION_FIELDS = {
    "mixed_timezones": "data.time[5]",
    "unparseable_time": "data.time[7]",
    "irregular_spacing": "data.time[9]",
    "not_a_number": "data.demand_mw[3]",
    "not_finite": "data.demand_mw[3]",
    "length_mismatch": "data.demand_mw",
    "missing_column": "data.demand_mw",
    "unknown_column": "data.price",
    "not_an_array": "data.demand_mw",
    "too_few_rows": "data.time",
    "too_many_rows": "data.time",
    "duplicate_timestamps": "data.time[1]",
}


@pytest.mark.parametrize("code", sorted(VALIDATION_CASES))
def test_each_validation_failure_is_a_422_naming_the_field(served, code):
    server, _ = served
    body = _mutated(VALIDATION_CASES[code])
    reply = server.request("POST", "/predict", body, JSON)
    assert reply.status == 422, reply.body[:300]
    assert reply.headers["content-type"] == "application/problem+json"
    errors = reply.json()["errors"]
    assert (errors[0]["code"], errors[0]["field"]) == (code, VALIDATION_FIELDS[code])


def test_caller_series_gets_a_forecast_after_its_last_time(served):
    server, _ = served
    data = _series()
    reply = server.post_json("/predict", {"index_col": "time", "data": data, "inference_length": 2})
    assert reply.status == 200
    body = reply.json()
    assert body["source"] == "request"
    assert [p["time"] for p in body["predictions"]] == [
        "2000-07-09T08:00:00Z",
        "2000-07-09T08:30:00Z",
    ]


def test_recycled_workers_keep_their_counts_and_leave_the_live_gauges(artifact):
    """max_requests recycles workers; counters of dead workers still add up (multiprocess
    files), and child_exit removes their per-worker gauge."""
    window, parent = new_shm_window(artifact)
    window.publish(500)
    server = GunicornServer(
        {
            "SHM_DIR": str(window.directory),
            "WEB_MAX_REQUESTS": "15",
            "WEB_MAX_REQUESTS_JITTER": "0",
        },
        # One worker, so that every request counts towards its budget: with two, the kernel
        # may hand new connections to the fresh worker again and again and starve the other.
        workers=1,
    )
    try:
        server.wait_ready()
        first = server.worker_pids()
        sent, deadline = 0, time.monotonic() + 60
        while first & server.worker_pids():
            left = first & server.worker_pids()
            assert sent < 600 and time.monotonic() < deadline, f"{left} not recycled"
            assert server.post_json("/predict", {}).status == 200
            sent += 1
        wait_until_pids = time.monotonic() + 20
        while len(server.worker_pids()) != 1:
            assert time.monotonic() < wait_until_pids, "no replacement worker started"
            time.sleep(0.05)
        after = _scrape(server)
        key = (
            "webapp_http_requests_total",
            (("method", "POST"), ("route", "/predict"), ("status", "200")),
        )
        assert after[key] == sent
        gauge_pids = {
            int(dict(labels)["pid"])
            for (name, labels), _ in after.items()
            if name == "webapp_worker_generation"
        }
        assert gauge_pids <= server.worker_pids()
        assert not gauge_pids & first
    finally:
        server.stop()
        window.close()
        remove_tree(parent)


def _raw(server: GunicornServer, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize(
    ("request_bytes", "status", "slug"),
    [
        (b"GARBAGE\r\n\r\n", 400, "bad-request"),
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri-too-long"),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(70)) + b"\r\n",
            431,
            "header-fields-too-large",
        ),
    ],
    ids=["bad-request-line", "uri-too-long", "too-many-headers"],
)
def test_requests_gunicorn_rejects_get_problem_json_too(served, request_bytes, status, slug):
    server, _ = served
    code, headers, body = _raw(server, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == f"/problems/{slug}" and problem["status"] == status
    spec = server.request("GET", "/openapi.json").json()
    assert problem["type"] in spec["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
