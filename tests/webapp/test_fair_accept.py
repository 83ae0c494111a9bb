"""Gunicorn's gevent workers share new connections out by the connections they hold
(webapp.gevent_worker.FairShareServer), and never leave one waiting for a worker that
cannot take it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.webapp._support import GunicornServer, ShmWindow, new_shm_window, remove_tree

pytestmark = pytest.mark.server


@pytest.fixture
def window(artifact: bytes) -> Iterator[ShmWindow]:
    win, parent = new_shm_window(artifact)
    win.publish(1000)
    win.write_status()
    try:
        yield win
    finally:
        win.close()
        remove_tree(parent)


def _server(window: ShmWindow, workers: int, defer_ms: str) -> GunicornServer:
    """A server whose every worker has answered (a worker still warming up accepts nothing
    and takes no part in the sharing), with no connection left open."""
    env = {"SHM_DIR": str(window.directory), "WEB_ACCEPT_DEFER_MS": defer_ms}
    server = GunicornServer(env, workers=workers)
    server.wait_ready()
    answered: set[int] = set()
    deadline = time.monotonic() + 60
    while answered != server.worker_pids() and time.monotonic() < deadline:
        answered.add(server.request("GET", "/cache").json()["pid"])
    time.sleep(0.5)  # the workers have seen those connections close
    return server


def _open(server: GunicornServer) -> tuple[http.client.HTTPConnection, int]:
    """A kept-alive connection, answered once: (it, the pid of the worker holding it)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/cache")
    response = conn.getresponse()
    assert response.status == 200
    return conn, int(json.loads(response.read())["pid"])


def test_keep_alive_connections_are_spread_evenly_over_the_workers(window: ShmWindow) -> None:
    # Without the shared counts (WEB_ACCEPT_DEFER_MS=0) they were seen split 3/8/10, 5/7/9,
    # 6/7/8. A long wait makes the test independent of how fast the workers are scheduled:
    # a worker holding more waits until another has taken the connection.
    server = _server(window, workers=3, defer_ms="500")
    conns: list[tuple[http.client.HTTPConnection, int]] = []
    try:
        held: Counter[int] = Counter()
        for _ in range(30):
            conns.append(_open(server))
            held[conns[-1][1]] += 1
        assert set(held) == server.worker_pids(), held
        assert max(held.values()) - min(held.values()) <= 1, held
        # Each connection still serves its next request from the same worker.
        for conn, pid in conns:
            conn.request("GET", "/cache")
            response = conn.getresponse()
            assert response.status == 200 and json.loads(response.read())["pid"] == pid
    finally:
        for conn, _ in conns:
            conn.close()
        server.stop()
    assert server.proc.returncode == 0


def test_a_connection_is_taken_when_the_worker_holding_fewest_cannot(window: ShmWindow) -> None:
    server = _server(window, workers=2, defer_ms="20")
    by_pid: dict[int, http.client.HTTPConnection] = {}
    stopped = None
    try:
        while len(by_pid) < 2:
            conn, pid = _open(server)
            if pid in by_pid:
                conn.close()
            else:
                by_pid[pid] = conn
        busy, idle = list(by_pid)
        by_pid.pop(idle).close()
        time.sleep(0.5)  # the idle worker has seen the close: it holds none, the busy one one
        os.kill(idle, signal.SIGSTOP)
        stopped = idle
        started = time.monotonic()
        conn, pid = _open(server)
        took = time.monotonic() - started
        conn.close()
        # The busy worker waited for the idle one (20 ms, at most twice), then took it.
        assert pid == busy
        assert took < 5.0, f"{took:.2f} s"
    finally:
        if stopped is not None:
            os.kill(stopped, signal.SIGCONT)
        for conn in by_pid.values():
            conn.close()
        server.stop()
    assert server.proc.returncode == 0
