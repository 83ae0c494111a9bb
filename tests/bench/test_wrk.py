"""``bench._wrk``: wrk's report parsed in every unit it prints, and one real run on loopback.

The report texts are wrk 4.1's output (``--latency``), captured from real runs and varied in
the ways wrk varies them: time units from microseconds to minutes, thousands as ``k``, the
error lines present or absent.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from bench._proc import ROOT
from bench._wrk import Wrk, WrkError, missing, parse

FAST = """\
Running 2s test @ http://127.0.0.1:18999/predict
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.00us    3.07ms  19.36ms   84.07%
    Req/Sec     1.20k   358.33     1.98k    70.00%
  Latency Distribution
     50%  645.00us
     75%    5.13ms
     90%    8.26ms
     99%   15.28ms
  2397 requests in 2.01s, 1.27MB read
Requests/sec:   1189.74
Transfer/sec:    644.92KB
"""

SLOW = """\
Running 1m test @ http://127.0.0.1:41234/predict
  2 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52s   400.10ms   4.00s    71.00%
    Req/Sec    20.10      9.80    50.00     60.00%
  Latency Distribution
     50%    1.50s
     75%    1.80s
     90%    2.10s
     99%    3.50s
  2171 requests in 1.00m, 410.20KB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 5
Requests/sec:     36.17
Transfer/sec:      6.83KB
"""


def test_a_report_in_microseconds_and_milliseconds():
    figures = parse(FAST)
    assert figures["requests"] == 2397 and figures["seconds"] == 2.01
    assert figures["rps"] == 1189.7
    assert figures["avg_ms"] == 0.812 and figures["max_ms"] == 19.36
    assert (figures["p50_ms"], figures["p75_ms"], figures["p90_ms"], figures["p99_ms"]) == (
        0.645,
        5.13,
        8.26,
        15.28,
    )
    assert figures["socket_errors"] == 0 and figures["non_2xx"] == 0


def test_a_report_in_seconds_and_minutes_with_errors():
    figures = parse(SLOW)
    assert figures["seconds"] == 60.0 and figures["rps"] == 36.2
    assert figures["p50_ms"] == 1500.0 and figures["p99_ms"] == 3500.0
    assert figures["avg_ms"] == 1520.0 and figures["max_ms"] == 4000.0
    assert figures["socket_errors"] == 9
    assert figures["socket_errors_by_kind"] == {"connect": 0, "read": 2, "write": 0, "timeout": 7}
    assert figures["non_2xx"] == 5


def test_a_report_without_latency_or_without_totals_is_an_error():
    no_distribution = FAST.replace("     50%  645.00us\n", "")
    with pytest.raises(WrkError, match="--latency"):
        parse(no_distribution)
    with pytest.raises(WrkError, match="Requests/sec"):
        parse("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_a_run_that_completed_nothing_has_no_latency_to_report():
    empty = "  0 requests in 1.00s, 0.00B read\n  Socket errors: connect 4, read 0, write 0, "
    empty += "timeout 0\nRequests/sec:      0.00\nTransfer/sec:       0.00B\n"
    figures = parse(empty)
    assert figures["requests"] == 0 and figures["socket_errors"] == 4
    assert figures["p50_ms"] is figures["p99_ms"] is figures["avg_ms"] is None


def test_missing_wrk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "make bench-tools" in (missing() or "")
    with pytest.raises(WrkError, match="make bench-tools"):
        Wrk(1, 1, 1, tmp_path, "none")


class _Predict(BaseHTTPRequestHandler):
    """Answers wrk's ``POST /predict {}``: 200 while ``ok`` says so, else 503."""

    ok: ClassVar[bool] = True
    bodies: ClassVar[set[bytes]] = set()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Predict.bodies.add(body + b" " + self.headers["Content-Type"].encode())
        self.send_response(200 if self.path == "/predict" and _Predict.ok else 503)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """A loopback server for wrk; wrk itself installed as ``make bench-tools`` does when this
    runs as root, else the test is skipped with the reason."""
    if missing() and os.geteuid() == 0:
        subprocess.run(["make", "--no-print-directory", "bench-tools"], cwd=ROOT, check=True)
    if why := missing():
        pytest.skip(why)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Predict)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_real_run_posts_the_scripts_body_and_counts_refusals(server: int, tmp_path: Path):
    _Predict.ok = True
    ok = Wrk(server, 2, 1, tmp_path, "ok").result(timeout=30)
    assert ok["requests"] > 0 and ok["non_2xx"] == 0 and ok["socket_errors"] == 0
    assert ok["connections"] == 2 and ok["threads"] == 1
    assert 0 < ok["p50_ms"] <= ok["p99_ms"] <= ok["max_ms"]
    assert _Predict.bodies == {b"{} application/json"}
    # Its own CPU: some, and never more than every core for the whole run.
    assert ok["wrk_cpu_s"] > 0 and 0 < ok["wrk_cpu_share"] <= 1
    assert ok["wrk_cpu_ms_per_request"] == pytest.approx(
        ok["wrk_cpu_s"] * 1000 / ok["requests"], rel=1e-2, abs=1e-4
    )
    _Predict.ok = False
    refused = Wrk(server, 2, 1, tmp_path, "refused").result(timeout=30)
    assert refused["non_2xx"] == refused["requests"] > 0
