"""Scenario 5: a Gunicorn worker SIGKILLed while it serves. The master forks a replacement,
and the replacement's first answer already names the current generation (the newest one in
the shm directory when that request was sent), while the daemon keeps publishing.

All ``/cache`` requests of the run come from this test, so the first answer carrying a new
pid is that worker's first request. Only requests that were in flight when a worker died may
fail (their connection dies with the process, before or during the answer); every other
request gets a complete 200.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import time

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, regressions
from tests.concurrency._http import Load, summarize
from tests.concurrency._kafka import Pacer, Producer
from tests.concurrency._service import Service, running_service, wait_until

pytestmark = pytest.mark.concurrency

SNAPSHOT_ROWS = 1000
KILLS = 3


def replacement(service: Service, before: set[int]) -> set[int] | None:
    new = service.worker_pids() - before
    return new if len(new) == 1 else None


def answered_by(load: Load, pid: int) -> bool:
    return any(r.kind == "ok" and r.json()["pid"] == pid for r in load.results())


def test_a_replaced_worker_serves_the_current_generation_at_once(
    stack: StackHandle, artifact: bytes
) -> None:
    rng = random.Random(5)
    topic = stack.new_topic(1, prefix="worker")
    kills: list[tuple[int, int]] = []
    replacements: list[int] = []
    with running_service(
        artifact, stack=stack, topic=topic, workers=4, snapshot_rows=SNAPSHOT_ROWS
    ) as service:
        producer = Producer(stack, topic)
        pacer = Pacer(producer, first=SNAPSHOT_ROWS, count=100_000, rate=40.0, batch=2)
        try:
            pacer.start()
            with Load(service.port, "GET", "/cache", threads=6, context=service.generation) as load:
                for _ in range(KILLS):
                    time.sleep(1.0)
                    pids = service.worker_pids()
                    victim = rng.choice(sorted(pids))
                    os.kill(victim, signal.SIGKILL)
                    kills.append((victim, time.monotonic_ns()))
                    (new_pid,) = wait_until(
                        functools.partial(replacement, service, pids),
                        timeout=60,
                        what="a replacement worker",
                    )
                    replacements.append(new_pid)
                    wait_until(
                        functools.partial(answered_by, load, new_pid),
                        timeout=30,
                        what="an answer from the replacement",
                    )
                time.sleep(0.5)
        finally:
            pacer.stop()
            producer.close()
        results = load.results()
        assert len(service.worker_pids()) == 4

    failed = [r for r in results if not (r.kind == "ok" and r.status == 200)]
    for r in failed:
        # The connections the killed process had in hand die with it (a gthread worker holds
        # several): reset before or during the answer. Nothing else may fail.
        assert r.kind in ("closed", "truncated"), (summarize(results), r)
        assert any(r.sent_ns <= at <= r.done_ns for _, at in kills), r
    answered = json_ok(results)
    bodies = [r.json() for r in answered]
    behind = [
        (b, r.context) for b, r in zip(bodies, answered, strict=True) if b["generation"] < r.context
    ]
    assert behind == [], behind[:3]
    firsts = []
    for pid in replacements:
        mine = sorted(
            (r for r, b in zip(answered, bodies, strict=True) if b["pid"] == pid),
            key=lambda r: r.done_ns,
        )
        first = mine[0]
        firsts.append((first.json()["generation"], first.context))
        assert first.json()["generation"] >= first.context
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
        "5-worker-kill",
        kills=KILLS,
        cache_requests=len(results),
        answers_checked=len(answered),
        behind_current=0,
        in_flight_at_a_kill_reset=len(failed),
        other_failures=0,
        replacement_first_answers=[{"generation": g, "newest_at_send": c} for g, c in firsts],
    )
