"""Scenario 1, split brain: Gunicorn with four workers, the daemon consuming a real topic.

After each event is acknowledged by the broker, every worker (told apart by the ``pid`` in
``/cache``) must report a generation that holds it (its offsets cover the event) within a
bound; no worker ever reports a lower generation than it reported before; and all workers
serving one generation serve the same bytes (one checksum per generation, equal to the one
the daemon recorded and to the one the recorder computes from that generation's files). The
events run with the daemon publishing inline files and segments; a worker verifies an inline
generation's checksum itself (``checksum_matches``), a segmented one's is checked against
the files by the recorder only. The same holds for the model: a new artifact in S3 reaches
every worker, and no worker answers with the old one once it has answered with the new.
"""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, regressions
from tests.concurrency._http import Load, summarize
from tests.concurrency._kafka import Producer
from tests.concurrency._recorder import Recorder
from tests.concurrency._service import running_service, wait_until
from tests.webapp._support import train_artifact

pytestmark = pytest.mark.concurrency

WORKERS = 4
SNAPSHOT_ROWS = 1000
EVENTS = 12
# Broker ack -> consumer fetch -> publication -> every worker: generous for a busy 2-core box.
BOUND_S = 5.0


def run_split_brain(
    stack: StackHandle, artifact: bytes, *, events: int, layout: str = "auto"
) -> dict[str, object]:
    """Produce ``events`` events one by one; after each, every worker must serve it."""
    topic = stack.new_topic(1, prefix="split")
    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        workers=WORKERS,
        snapshot_rows=SNAPSHOT_ROWS,
        layout=layout,
        daemon_env={"SHM_KEEP_GENERATIONS": "16"},  # the recorder opens each before it goes
    ) as service:
        recorder = Recorder(service.shm_dir, service.work / "generations.jsonl").start()
        pids = service.worker_pids()
        assert len(pids) == WORKERS
        producer = Producer(stack, topic)
        latencies: list[float] = []
        try:
            with Load(service.port, "GET", "/cache", threads=8) as load:
                for n in range(events):
                    (offset,) = producer.send([SNAPSHOT_ROWS + n])
                    acked = time.monotonic_ns()
                    deadline = acked + int(BOUND_S * 1e9)
                    seen_at: dict[int, int] = {}
                    while set(seen_at) != pids and time.monotonic_ns() < deadline:
                        for r in load.results():
                            if r.kind != "ok" or r.status != 200 or r.sent_ns < acked:
                                continue
                            body = r.json()
                            if body["offsets"].get("0", 0) > offset and body["pid"] in pids:
                                seen_at.setdefault(body["pid"], r.done_ns)
                        time.sleep(0.02)
                    missing = pids - set(seen_at)
                    assert not missing, f"event {n}: workers {missing} not fresh in {BOUND_S} s"
                    latencies.append((max(seen_at.values()) - acked) / 1e9)
        finally:
            producer.close()
        results = load.results()
        assert service.worker_pids() == pids, "a worker was replaced during the test"
        records = recorder.wait_for(service.generation())
        recorder.stop()

    answered = json_ok(results)
    bodies = [r.json() for r in answered]
    assert len(answered) == len(results), summarize(results)
    observations = [
        (b["pid"], b["generation"], r.sent_ns, r.done_ns)
        for b, r in zip(bodies, answered, strict=True)
    ]
    assert regressions(observations) == []
    segmented = layout == "segmented"
    assert all(b["checksum_matches"] is (None if segmented else True) for b in bodies)
    checksums: dict[int, set[str]] = {}
    for b in bodies:
        checksums.setdefault(b["generation"], set()).add(b["checksum"])
    assert all(len(c) == 1 for c in checksums.values()), checksums
    files = {g: r for g, r in records.items() if g in checksums and not r.get("missed")}
    assert all(r["segmented"] == segmented for r in files.values())
    assert {g: r["actual"] for g, r in files.items()} == {g: checksums[g].pop() for g in files}
    assert {b["pid"] for b in bodies} == pids
    return dict(
        workers=WORKERS,
        events=events,
        cache_answers_checked=len(bodies),
        failed=len(results) - len(answered),
        regressions=0,
        layout=layout,
        generations_seen=len(checksums),
        generations_checked_against_files=len(files),
        max_latency_s=round(max(latencies), 3),
        median_latency_s=round(sorted(latencies)[len(latencies) // 2], 3),
    )


@pytest.mark.parametrize("layout", ["inline", "segmented"])
def test_every_worker_serves_each_new_event_and_never_goes_back(
    stack: StackHandle, artifact: bytes, layout: str
) -> None:
    figures("1-split-brain", **run_split_brain(stack, artifact, events=EVENTS, layout=layout))


def answered_with(load: Load, model_sha256: str) -> set[int]:
    """The worker pids that have answered ``/cache`` naming this model so far."""
    return {
        body["pid"]
        for body in (r.json() for r in load.results() if r.kind == "ok" and r.status == 200)
        if body["model_sha256"] == model_sha256
    }


def test_a_new_model_reaches_every_worker_and_none_goes_back(
    stack: StackHandle, artifact: bytes
) -> None:
    topic = stack.new_topic(1, prefix="model")
    replacement = train_artifact(max_lag=96)
    old_sha = hashlib.sha256(artifact).hexdigest()
    new_sha = hashlib.sha256(replacement).hexdigest()
    assert old_sha != new_sha
    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        workers=WORKERS,
        snapshot_rows=SNAPSHOT_ROWS,
        model_in_s3=True,
    ) as service:
        pids = service.worker_pids()
        with Load(service.port, "GET", "/cache", threads=8) as load:
            # Every worker answers with the old model first, so "none goes back" covers each.
            wait_until(
                lambda: answered_with(load, old_sha) == pids,
                timeout=30,
                what="every worker answering with the old model",
            )
            client = stack.minio()
            assert service.bucket is not None
            sidecar = f"{new_sha}  model.skops\n".encode()
            for key, data in (("model.skops.sha256", sidecar), ("model.skops", replacement)):
                client.put_object(
                    bucket_name=service.bucket,
                    object_name=key,
                    data=io.BytesIO(data),
                    length=len(data),
                )
            uploaded = time.monotonic_ns()
            deadline = uploaded + int(20 * 1e9)
            switched: dict[int, int] = {}
            while set(switched) != pids and time.monotonic_ns() < deadline:
                for r in load.results():
                    if r.kind == "ok" and r.status == 200:
                        body = r.json()
                        if body["model_sha256"] == new_sha:
                            switched.setdefault(body["pid"], r.done_ns)
                time.sleep(0.05)
            assert set(switched) == pids, f"workers {pids - set(switched)} still on the old model"
            predict = service.predict()
        results = load.results()
    answered = json_ok(results)
    assert len(answered) == len(results), summarize(results)
    regress = []
    for r in answered:
        body = r.json()
        first_new = switched.get(body["pid"])
        if first_new is not None and r.sent_ns > first_new and body["model_sha256"] != new_sha:
            regress.append(body)
    assert regress == []
    assert predict.json()["model_version"] == f"sha256:{new_sha[:12]}"
    figures(
        "1b-model-change",
        workers=WORKERS,
        cache_answers_checked=len(answered),
        failed=len(results) - len(answered),
        back_to_old_model=0,
        all_workers_switched_s=round((max(switched.values()) - uploaded) / 1e9, 2),
    )
