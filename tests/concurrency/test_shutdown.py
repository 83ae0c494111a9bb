"""Scenario 8: graceful shutdown and reload under load lose no accepted request.

* SIGTERM to the daemon: it publishes what it had read, writes ``stopping`` and exits 0; the
  workers go on answering from that generation; after a restart nothing is lost or counted
  twice.
* SIGHUP to Gunicorn: every worker is replaced and every request still gets a complete 200.
* SIGTERM to Gunicorn: each request either gets a complete response, or is refused (nothing
  listens any more), or is closed before a single byte came back (it was still in the listen
  backlog, never taken by a worker); never a truncated response, never a 5xx. SIGTERM repeated
  every millisecond until the master is gone changes none of that, and the exit code stays 0.
"""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, regressions, window_differences
from tests.concurrency._http import Load, summarize
from tests.concurrency._kafka import Pacer, Producer, end_offset
from tests.concurrency._series import rows_of, value
from tests.concurrency._service import running_service, wait_until

pytestmark = pytest.mark.concurrency

SNAPSHOT_ROWS = 1000
EVENTS = 600
ACCESS_LOG = {"WEB_ACCESS_LOG": "-", "LOG_LEVEL": "INFO"}


def test_sigterm_to_the_daemon_publishes_what_it_read_and_loses_nothing(
    stack: StackHandle, artifact: bytes
) -> None:
    topic = stack.new_topic(1, prefix="term")
    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        snapshot_rows=SNAPSHOT_ROWS,
        # Long enough that events read since the last generation are pending at SIGTERM.
        publish_interval_ms=1000,
    ) as service:
        producer = Producer(stack, topic)
        pacer = Pacer(producer, first=SNAPSHOT_ROWS, count=EVENTS, rate=120.0, batch=4)
        try:
            with Load(service.port, "POST", "/predict", b"{}", threads=4) as load:
                pacer.start()
                time.sleep(1.7)
                code = service.daemon.terminate()
                stopped_at = time.monotonic_ns()
                down = service.status()
                last = service.snapshot()
                assert last is not None
                last_generation, last_counters = last.generation, last.metadata["counters"]
                time.sleep(1.0)
                restarted_at = time.monotonic_ns()
                service.daemon.start()
                pacer.join()
                end = end_offset(stack, topic)
                final = service.wait_snapshot(
                    lambda s: s.metadata["offsets"] == f'{{"0": {end}}}',
                    timeout=60,
                    what="caught up after the restart",
                )
        finally:
            producer.close()
        results = load.results()
        window, counters = rows_of(final.table), json.loads(final.metadata["counters"])
    assert code == 0
    assert down is not None and down["state"] == "stopping"
    assert down["generation"] == last_generation
    # Everything read before the signal is in the last generation.
    assert json.loads(last_counters)["events"] == down["counters"]["events"]
    assert end == EVENTS
    differences = window_differences(window, {i: value(i) for i in range(SNAPSHOT_ROWS + EVENTS)})
    assert set(differences.values()) == {0}, differences
    assert counters["events"] == EVENTS
    answered = json_ok(results)
    assert len(answered) == len(results), summarize(results)
    while_down = [r for r in answered if stopped_at < r.sent_ns and r.done_ns < restarted_at]
    # The daemon is down for a second under four client threads; no answer inside that second
    # would leave the next line nothing to check.
    assert while_down, "no request was answered while the daemon was down"
    assert {r.json()["generation"] for r in while_down} == {last_generation}
    figures(
        "8a-daemon-sigterm",
        exit_code=code,
        events=EVENTS,
        events_in_last_generation=json.loads(last_counters)["events"],
        predict_requests=len(results),
        predict_failed=len(results) - len(answered),
        answers_while_down=len(while_down),
        **differences,
        events_counted=counters["events"],
    )


def test_sighup_to_gunicorn_replaces_every_worker_without_a_failed_request(
    artifact: bytes,
) -> None:
    with running_service(
        artifact, workers=4, daemon_env={"REPLAY_RATE": "20"}, web_env=ACCESS_LOG
    ) as service:
        before = service.worker_pids()
        with Load(service.port, "GET", "/cache", threads=6, context=service.generation) as load:
            time.sleep(1.0)
            assert service.web is not None
            service.web.proc.send_signal(signal.SIGHUP)
            wait_until(
                lambda: len(pids := service.worker_pids()) == 4 and not pids & before,
                timeout=60,
                what="every worker replaced",
            )
            after = service.worker_pids()
            wait_until(
                lambda: {r.json()["pid"] for r in json_ok(load.results())} >= after,
                timeout=30,
                what="answers from every new worker",
            )
        results = load.results()
        assert service.web is not None
        service.web.proc.send_signal(signal.SIGTERM)  # flushes the access log
        service.web.proc.wait(60)
        served = service.access_lines("/cache")
        server_errors = service.error_lines()
    answered = json_ok(results)
    assert len(answered) == len(results), (summarize(results), server_errors)
    assert served == len(answered)
    bodies = [r.json() for r in answered]
    assert all(b["generation"] >= r.context for b, r in zip(bodies, answered, strict=True))
    assert (
        regressions(
            [
                (b["pid"], b["generation"], r.sent_ns, r.done_ns)
                for b, r in zip(bodies, answered, strict=True)
            ]
        )
        == []
    )
    figures(
        "8b-gunicorn-sighup",
        requests=len(results),
        failed=len(results) - len(answered),
        workers_replaced=len(before),
        answered_by_old_workers=sum(1 for b in bodies if b["pid"] in before),
        answered_by_new_workers=sum(1 for b in bodies if b["pid"] in after),
    )


ALLOWED = {"ok 200", "refused", "closed"}


def test_sigterm_to_gunicorn_never_truncates_a_response(artifact: bytes) -> None:
    with running_service(
        artifact, workers=4, daemon_env={"REPLAY_RATE": "20"}, web_env=ACCESS_LOG
    ) as service:
        web = service.web
        assert web is not None
        # The test bound the listening socket and passed it as fd://N; drop its copy so that
        # Gunicorn closing the socket really stops the listening.
        web._sock.close()
        with Load(service.port, "POST", "/predict", b"{}", threads=8, timeout=30) as load:
            time.sleep(1.0)
            web.proc.send_signal(signal.SIGTERM)
            code = web.proc.wait(60)
            exited = time.monotonic_ns()
            time.sleep(0.5)
        results = load.results()
        served = service.access_lines("/predict")
        server_errors = service.error_lines()
    counts = summarize(results)
    assert code == 0
    odd = [(r.kind, r.status, r.error) for r in results if summarize([r]).keys() - ALLOWED]
    assert set(counts) <= ALLOWED, (counts, odd[:5], server_errors)
    assert counts.get("refused", 0) > 0, counts
    assert all(r.kind == "refused" for r in results if r.sent_ns > exited), counts
    # The server handled exactly the requests that got a complete answer: the ones closed
    # without a byte were never taken by a worker.
    assert served == counts["ok 200"], (served, counts)
    figures(
        "8c-gunicorn-sigterm",
        requests=len(results),
        complete_200=counts.get("ok 200", 0),
        refused=counts.get("refused", 0),
        closed_unanswered=counts.get("closed", 0),
        handled_by_workers=served,
        truncated=counts.get("truncated", 0),
        server_errors=sum(v for k, v in counts.items() if k.startswith("ok 5")),
        exit_code=code,
    )


def test_a_repeated_sigterm_to_gunicorn_still_exits_0(artifact: bytes) -> None:
    """SIGTERM may reach the master more than once (tini, an orchestrator): every repeat,
    up to the master's very end, leaves the stop graceful and the exit code 0, not 143."""
    with running_service(artifact, workers=3, daemon_env={"REPLAY_RATE": "20"}) as service:
        web = service.web
        assert web is not None
        web._sock.close()  # as above: Gunicorn's close must really stop the listening
        with Load(service.port, "POST", "/predict", b"{}", threads=2, timeout=30) as load:
            time.sleep(1.0)
            sent = 0
            while web.proc.poll() is None and sent < 20_000:
                web.proc.send_signal(signal.SIGTERM)
                sent += 1
                time.sleep(0.001)
            code = web.proc.wait(60)
        counts = summarize(load.results())
    assert sent >= 2  # the master was still there for at least one repeat
    assert code == 0, (sent, counts)
    assert set(counts) <= ALLOWED, counts
