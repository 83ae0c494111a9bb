"""Scenario 4: the Kafka broker stopped and restarted mid-stream; S3 unreachable when the
daemon starts. Both with the behaviour `docs/daemon.md` documents:

* Kafka down: the last generation stays live and is served (no 5xx), the daemon reports
  ``degraded`` with ``last_error``, readiness turns "stale" past ``MAX_DATA_AGE_MS``; a daemon
  restarted meanwhile stops in bounded time and starts again from its last generation without
  the broker; when the broker is back the daemon reconnects by itself and resumes from its
  offsets, losing nothing and counting nothing twice.
* S3 down at start: a few bounded snapshot attempts (reported in the status file), then the
  daemon starts from Kafka alone (the topic from its start); without a model the service says
  so (``/readyz`` 503 "no model", ``/predict`` 503 problem+json, never a 500); the model
  watcher keeps trying and, once S3 answers, the model reaches every worker through a new
  generation and the service becomes ready.
"""

from __future__ import annotations

import json
import time

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, window_differences
from tests.concurrency._gate import Gate
from tests.concurrency._http import Load, Result, summarize
from tests.concurrency._kafka import Producer
from tests.concurrency._series import rows_of, value
from tests.concurrency._service import running_service, wait_until

pytestmark = pytest.mark.concurrency

SNAPSHOT_ROWS = 1000
MAX_AGE_MS = 2000
AFTER_READY = 40


def offsets_are(n: int) -> str:
    return f'{{"0": {n}}}'


def run_broker_restart(
    stack: StackHandle, artifact: bytes, *, hard: bool, first: int, second: int
) -> dict[str, object]:
    """Stream ``first`` events, stop the broker (SIGKILL with ``hard``), check the outage,
    SIGTERM and restart the daemon while the broker is still down, start the broker, stream
    ``second`` events, check that everything arrived exactly once."""
    topic = stack.new_topic(1, prefix="broker")
    with (
        running_service(
            artifact, stack=stack, topic=topic, snapshot_rows=SNAPSHOT_ROWS, max_age_ms=MAX_AGE_MS
        ) as service,
        Load(service.port, "POST", "/predict", b"{}", threads=4) as predict,
        Load(service.port, "GET", "/readyz", threads=1) as ready,
    ):
        producer = Producer(stack, topic)
        try:
            for start in range(SNAPSHOT_ROWS, SNAPSHOT_ROWS + first, 20):
                producer.send(range(start, start + 20))
        finally:
            producer.close()
        before = service.wait_snapshot(
            lambda s: s.metadata["offsets"] == offsets_are(first), what="first half read"
        )
        down = time.monotonic()
        stack.stop_kafka(hard=hard)
        try:
            degraded = service.wait_status(
                lambda s: s["state"] == "degraded" and bool(s["last_error"]),
                what="degraded while the broker is down",
            )
            noticed_s = time.monotonic() - down
            wait_until(
                lambda: service.get("/readyz").headers.get("x-not-ready") == "stale",
                timeout=MAX_AGE_MS / 1000 + 10,
                what="/readyz stale while the broker is down",
            )
            during = [service.predict() for _ in range(20)]
            # A daemon restarted during the outage stops in bounded time and starts again
            # from its last generation without the broker.
            stop_started = time.monotonic()
            code = service.daemon.terminate(timeout=60)
            stop_s = time.monotonic() - stop_started
            service.daemon.start()
            restarted = service.wait_status(
                lambda s: s["pid"] == service.daemon.pid and s["state"] == "degraded",
                what="the restarted daemon degraded while the broker is down",
            )
            resumed = service.snapshot()
            after_restart = [service.predict() for _ in range(20)]
        finally:
            restart_s = stack.start_kafka()
        up = time.monotonic()
        producer = Producer(stack, topic)
        try:
            start = SNAPSHOT_ROWS + first
            for chunk in range(start, start + second, 20):
                producer.send(range(chunk, chunk + 20))
        finally:
            producer.close()
        final = service.wait_snapshot(
            lambda s: s.metadata["offsets"] == offsets_are(first + second),
            timeout=60,
            what="second half read after the broker came back",
        )
        recovered_s = time.monotonic() - up
        service.wait_ready()
        status = service.wait_status(lambda s: s["state"] == "live", what="live again")
    assert before.generation == service_generation_of(during)
    assert all(r.kind == "ok" and r.status == 200 for r in during)
    assert code == 0
    # Restarted without the broker, the daemon serves its last window again; not knowing how
    # far behind it is, it may republish it as "restoring" (same rows, same checksum).
    assert resumed is not None
    assert resumed.metadata["window_checksum"] == before.metadata["window_checksum"]
    assert resumed.metadata["offsets"] == before.metadata["offsets"]
    assert all(r.kind == "ok" and r.status == 200 for r in after_restart)
    assert {r.json()["window"]["checksum"] for r in after_restart} == {
        before.metadata["window_checksum"]
    }
    assert restarted["generation"] >= before.generation
    for report in (degraded, restarted):
        assert "kafka" in report["last_error"].lower(), report
    assert status["last_error"] is None
    results = predict.results()
    assert len(json_ok(results)) == len(results), summarize(results)
    assert all(r.kind == "ok" and r.status in (200, 503) for r in ready.results())
    differences = window_differences(
        rows_of(final.table), {i: value(i) for i in range(SNAPSHOT_ROWS + first + second)}
    )
    assert set(differences.values()) == {0}, differences
    events_counted = json.loads(final.metadata["counters"])["events"]
    assert events_counted == first + second
    return dict(
        hard_kill=hard,
        events=first + second,
        predict_requests=len(results),
        predict_failed=len(results) - len(json_ok(results)),
        readyz_probes=len(ready.results()),
        degraded_noticed_s_after_stop_began=round(noticed_s, 2),
        broker_restart_s=round(restart_s, 2),
        caught_up_after_restart_s=round(recovered_s, 2),
        daemon_sigterm_while_broker_down_s=round(stop_s, 2),
        **differences,
        events_counted=events_counted,
    )


def test_broker_stopped_and_restarted_mid_stream(stack: StackHandle, artifact: bytes) -> None:
    out = run_broker_restart(stack, artifact, hard=False, first=300, second=300)
    figures("4a-kafka-broker-restart", **out)


def service_generation_of(results: list[Result]) -> int:
    generations: set[int] = {r.json()["generation"] for r in results}
    assert len(generations) == 1, generations
    return generations.pop()


def sent_after(results: list[Result], instant_ns: int) -> list[Result]:
    return [r for r in results if r.sent_ns > instant_ns]


def test_s3_unreachable_at_daemon_start(stack: StackHandle, artifact: bytes) -> None:
    topic = stack.new_topic(1, prefix="nos3")
    in_topic = 600
    producer = Producer(stack, topic)
    try:
        producer.send(range(SNAPSHOT_ROWS, SNAPSHOT_ROWS + in_topic))
    finally:
        producer.close()
    with (
        Gate(stack.s3_endpoint) as gate,
        running_service(
            artifact,
            stack=stack,
            topic=topic,
            snapshot_rows=SNAPSHOT_ROWS,
            model_in_s3=True,
            s3_endpoint=gate.address,
            max_age_ms=MAX_AGE_MS,
            wait_model=False,
            workers=0,
        ) as service,
    ):
        starting = service.wait_status(
            lambda s: s["state"] == "starting" and "snapshot" in (s["last_error"] or ""),
            what="the snapshot failure reported while starting",
        )
        served = service.wait_snapshot(
            lambda s: s.metadata["offsets"] == offsets_are(in_topic),
            what="a window from Kafka alone",
        )
        assert served.metadata["model_file"] == ""
        assert rows_of(served.table) == {
            i: value(i) for i in range(SNAPSHOT_ROWS, SNAPSHOT_ROWS + in_topic)
        }
        service.start_web(4)
        no_model = service.wait_status(
            lambda s: "model" in (s["last_error"] or ""), what="the model failure reported"
        )
        with Load(service.port, "POST", "/predict", b"{}", threads=4) as predict:
            readyz = service.get("/readyz")
            assert (readyz.status, readyz.headers.get("x-not-ready")) == (503, "no model")
            refused = service.predict()
            assert refused.status == 503
            assert refused.headers["content-type"].startswith("application/problem+json")
            gate.open()
            opened = time.monotonic()
            with_model = service.wait_snapshot(
                lambda s: bool(s.metadata["model_file"]),
                timeout=90,
                what="the model installed once S3 answers",
            )
            model_after_s = time.monotonic() - opened
            service.wait_ready()
            ready_ns = time.monotonic_ns()
            wait_until(
                lambda: len(sent_after(predict.results(), ready_ns)) >= AFTER_READY,
                timeout=60,
                what=f"{AFTER_READY} /predict answers sent after /readyz said 200",
            )
        status = service.wait_status(
            lambda s: s["state"] == "live" and s["last_error"] is None, what="error cleared"
        )
        assert status["generation"] >= with_model.generation
        results = predict.stop()
    kinds = summarize(results)
    assert set(kinds) <= {"ok 200", "ok 503"}, kinds
    # Every request reads the newest generation, and the generation that made /readyz 200
    # names the model: no worker may refuse a request sent after that, so no grace at all.
    after = summarize(sent_after(results, ready_ns))
    assert after == {"ok 200": after.get("ok 200", 0)}, after
    served_ok = [r for r in results if r.status == 200]
    assert all(r.json()["generation"] >= with_model.generation for r in served_ok)
    figures(
        "4b-s3-down-at-start",
        predict_requests=len(results),
        answered_503_no_model=kinds.get("ok 503", 0),
        answered_200_after=kinds.get("ok 200", 0),
        sent_after_ready=sum(after.values()),
        other=len(results) - kinds.get("ok 503", 0) - kinds.get("ok 200", 0),
        start_error=starting["last_error"][:80],
        model_error=no_model["last_error"][:80],
        model_served_after_s3_back_s=round(model_after_s, 2),
        gate_connections=gate.connections,
    )
