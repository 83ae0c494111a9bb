"""Scenario 10: the daemon SIGKILLed three times under ``make run`` while traffic runs.

``make run`` supervises the daemon as the kubelet does in the pod: it restarts it with a
backoff and keeps Gunicorn up, so clients see no 5xx and no connection error, the workers
keep serving the last generation meanwhile, ``/readyz`` stays ready (the outage is far
shorter than ``MAX_DATA_AGE_MS``), and generations keep increasing after every restart.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.concurrency import _http
from tests.concurrency._checks import figures
from tests.concurrency._local_run import LocalRun, local_run
from tests.concurrency._service import wait_until

pytestmark = pytest.mark.concurrency

KILLS = 3
BACK_WITHIN_S = 10.0


def _generation(run: LocalRun) -> int:
    reply = _http.call(run.port, "GET", "/cache", timeout=10)
    assert reply.status == 200, reply
    generation: int = reply.json()["generation"]
    return generation


class _Probe(threading.Thread):
    """Polls ``/readyz`` every 100 ms and keeps every answer that is not 200."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.probes = 0
        self.not_ready: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(0.1):
            reply = _http.call(self.port, "GET", "/readyz", timeout=10)
            self.probes += 1
            if reply.status != 200:
                self.not_ready.append(f"{reply.kind} {reply.status} {reply.body[:200]!r}")


def test_daemon_killed_under_make_run_is_restarted_and_nothing_fails(artifact: bytes) -> None:
    restarts: list[float] = []
    with local_run(artifact, MAX_DATA_AGE_MS="15000") as run:
        probe = _Probe(run.port)
        load = _http.Load(run.port, "POST", "/predict", b"{}", threads=3).start()
        probe.start()
        try:
            for _ in range(KILLS):
                time.sleep(1.5)
                pid = wait_until(run.daemon_pid, timeout=10, what="a running daemon")
                killed_at_gen = _generation(run)
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                wait_until(
                    lambda pid=pid: (p := run.daemon_pid()) is not None and p != pid,
                    timeout=BACK_WITHIN_S,
                    what="the daemon restarted",
                )
                wait_until(
                    lambda gen=killed_at_gen: _generation(run) > gen,
                    timeout=BACK_WITHIN_S,
                    what=f"a generation after {killed_at_gen} served",
                )
                restarts.append(round(time.monotonic() - t0, 2))
        finally:
            results = load.stop()
            probe.stop.set()
            probe.join(15)
        crashes = run.log_lines("killed by SIGKILL")
        log = run.tail()
    counts = _http.summarize(results)
    figures(
        "local_run_daemon_kill",
        kills=KILLS,
        back_after_s=restarts,
        requests=counts,
        readyz_probes=probe.probes,
        readyz_not_ready=len(probe.not_ready),
    )
    assert counts == {"ok 200": len(results)}, f"{counts}\n{log}"
    gens = [int(r.headers["x-cache-generation"]) for r in results]
    assert gens[-1] > gens[0]
    assert len(restarts) == KILLS and max(restarts) < BACK_WITHIN_S
    assert len(crashes) == KILLS, log
    assert probe.probes > 0 and not probe.not_ready, probe.not_ready[:5]
