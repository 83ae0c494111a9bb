"""Scenario 7: poison records in the topic while clients load ``/predict {}``.

One record in ten is broken, one of each reason the decoder knows, interleaved with valid
events. Every poison record must be counted under its reason (generation counters, status
file, ``/metrics``), appear once on the dead-letter topic with its ``reason`` header, its
source offset and its original bytes, and change nothing that is served: every request
answers 200 and the final window is exactly the snapshot plus the valid events.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests._stack import StackHandle
from tests.concurrency._checks import figures, json_ok, window_differences
from tests.concurrency._http import Load, summarize
from tests.concurrency._kafka import Pacer, Producer, end_offset, read_topic
from tests.concurrency._series import rows_of, stamp, value
from tests.concurrency._service import running_service

pytestmark = pytest.mark.concurrency

SNAPSHOT_ROWS = 1000
VALID = 600


def poison(i: int) -> tuple[str, bytes]:
    """A broken record for reason number ``i`` (cycling through every reason)."""
    t = stamp(i)
    cases: list[tuple[str, bytes]] = [
        ("empty", b""),
        ("too_large", json.dumps({"time": t, "demand_mw": 1.0, "x": "a" * 70_000}).encode()),
        ("bad_json", b'{"time": "' + t.encode() + b'", "demand_mw": '),
        ("not_object", b"[1, 2, 3]"),
        ("missing_time", b'{"demand_mw": 1.0}'),
        ("bad_time", b'{"time": "yesterday", "demand_mw": 1.0}'),
        ("bad_time", json.dumps({"time": t[:-1], "demand_mw": 1.0}).encode()),  # no offset
        ("missing_column", json.dumps({"time": t}).encode()),
        ("unknown_column", json.dumps({"time": t, "demand_mw": 1.0, "mw": 2.0}).encode()),
        ("wrong_type", json.dumps({"time": t, "demand_mw": "1.0"}).encode()),
        ("wrong_type", json.dumps({"time": t, "demand_mw": True}).encode()),
        ("non_finite", b'{"time": "' + t.encode() + b'", "demand_mw": NaN}'),
        ("non_finite", b'{"time": "' + t.encode() + b'", "demand_mw": -Infinity}'),
        ("out_of_range", json.dumps({"time": t, "demand_mw": 1e13}).encode()),
    ]
    return cases[(i // 10) % len(cases)]


def test_poison_is_counted_dead_lettered_and_never_served(
    stack: StackHandle, artifact: bytes
) -> None:
    topic = stack.new_topic(1, prefix="poison")
    dlq = stack.new_topic(1, prefix="dlq")
    sent: list[tuple[str, bytes]] = []

    def extra(i: int) -> list[bytes]:
        if i % 10:
            return []
        reason, raw = poison(i)
        sent.append((reason, raw))
        return [raw]

    with running_service(
        artifact,
        stack=stack,
        topic=topic,
        snapshot_rows=SNAPSHOT_ROWS,
        daemon_env={"KAFKA_DLQ_TOPIC": dlq},
    ) as service:
        producer = Producer(stack, topic)
        pacer = Pacer(producer, first=SNAPSHOT_ROWS, count=VALID, rate=150.0, batch=10, extra=extra)
        try:
            with Load(service.port, "POST", "/predict", b"{}", threads=4) as load:
                pacer.start()
                pacer.join()
                end = end_offset(stack, topic)
                final = service.wait_snapshot(
                    lambda s: s.metadata["offsets"] == f'{{"0": {end}}}',
                    what="every record read",
                )
        finally:
            producer.close()
        status = service.wait_status(lambda s: s["generation"] == final.generation)
        metrics = service.metrics()
        results = load.results()
        counters = json.loads(final.metadata["counters"])
        window = rows_of(final.table)
    expected = dict(Counter(reason for reason, _ in sent))
    assert end == VALID + len(sent)
    assert counters["dead_letters"] == expected
    assert counters["events"] == VALID
    assert status["counters"]["dead_letters"] == expected
    for reason, n in expected.items():
        assert metrics[f'daemon_dead_letters_total{{reason="{reason}"}}'] == n
    letters = read_topic(stack, dlq, expected=len(sent))
    assert len(letters) == len(sent)
    offsets = {raw_offset for _, raw_offset in pacer.raw_offsets}
    by_offset = {o: raw for raw, o in pacer.raw_offsets}
    for letter in letters:
        headers = {k: v.decode() for k, v in letter.headers}
        source = int(headers["source_offset"])
        assert source in offsets
        assert letter.value == by_offset[source]
        assert headers["source_topic"] == topic
    assert dict(Counter(dict(letter.headers)["reason"].decode() for letter in letters)) == expected
    differences = window_differences(window, {i: value(i) for i in range(SNAPSHOT_ROWS + VALID)})
    assert set(differences.values()) == {0}, differences
    answered = json_ok(results)
    assert len(answered) == len(results), summarize(results)
    figures(
        "7-poison",
        valid_events=VALID,
        poison_records=len(sent),
        reasons=len(expected),
        dead_letters_on_topic=len(letters),
        counted=sum(counters["dead_letters"].values()),
        predict_requests=len(results),
        predict_failed=len(results) - len(answered),
        **differences,
    )
