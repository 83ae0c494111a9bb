"""Per-process state under many request threads: the first requests of fresh workers.

A gthread worker's first requests used to race to create the per-worker generation gauge
lazily; the loser raised ``DuplicateTimeseries`` and its client got a 500. This drives many
concurrent first requests into many freshly forked workers and requires every answer to be
a 200 carrying the published generation. The server runs with a one-microsecond thread switch
interval (set by a ``sitecustomize`` on its ``PYTHONPATH``), so threads interleave between
almost every bytecode and a check-then-create race shows up within a few workers.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from tests.webapp._support import GunicornServer, Reply, new_shm_window, remove_tree

THREADS = 16
BURST = 32
ROUNDS = 12


def _burst(server: GunicornServer) -> list[Reply | BaseException]:
    """BURST requests released together, each on its own connection."""
    gate = threading.Barrier(BURST)
    replies: list[Reply | BaseException] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        send: Callable[[], Reply]
        if i % 2:
            send = lambda: server.post_json("/predict", {})  # noqa: E731
        else:
            send = lambda: server.request("GET", "/cache")  # noqa: E731
        gate.wait()
        try:
            reply: Reply | BaseException = send()
        except OSError as exc:
            reply = exc
        with lock:
            replies.append(reply)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(BURST)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    return replies


def _new_worker(server: GunicornServer, seen: set[int], timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = server.worker_pids() - seen
        if fresh:
            return fresh.pop()
        time.sleep(0.02)
    raise AssertionError(f"no fresh worker within {timeout} s (seen {sorted(seen)})")


@pytest.mark.slow
def test_first_requests_of_fresh_threaded_workers_never_fail(artifact: bytes, tmp_path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.setswitchinterval(1e-6)\n")
    window, parent = new_shm_window(artifact)
    window.publish(500)
    window.write_status(generation=window.publisher.generation)
    server = GunicornServer(
        {
            "SHM_DIR": str(window.directory),
            "MAX_DATA_AGE_MS": "600000",
            "WEB_WORKER_CLASS": "gthread",
            "WEB_THREADS": str(THREADS),
            "PYTHONPATH": str(tmp_path),
        },
        workers=1,
    )
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    seen: set[int] = set()
    try:
        server.wait_ready()
        for _ in range(ROUNDS):
            # Retire the worker that served; its replacement meets the whole burst first.
            for pid in server.worker_pids():
                os.kill(pid, signal.SIGTERM)
                seen.add(pid)
            seen.add(_new_worker(server, seen))
            for reply in _burst(server):
                if isinstance(reply, BaseException):
                    statuses["error"] += 1
                    failures.append(repr(reply))
                    continue
                statuses[str(reply.status)] += 1
                body = json.loads(reply.body)
                if reply.status != 200:
                    failures.append(f"{reply.status}: {body.get('detail')}")
                elif body["generation"] != window.publisher.generation:
                    failures.append(f"generation {body['generation']}")
    finally:
        log = server.log.read_text(errors="replace")
        server.stop()
        window.close()
        remove_tree(parent)
    assert not failures, f"{statuses}: {failures[:5]}\nserver log tail:\n{log[-3000:]}"
    assert len(seen) == ROUNDS + 1, f"{len(seen)} workers were met"
    assert statuses["200"] == ROUNDS * BURST
