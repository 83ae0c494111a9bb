"""The Kafka consumer thread of the baselines (kafka-python, a real broker).

Like the seed report's runtime thread: it lives inside the serving process, polls the topic
and hands each batch of decoded events to a callback that replaces the process's DataFrame.
Every partition is assigned (no consumer group), so each process reads the whole stream.
Records are decoded here, not by a kafka-python deserializer; a record that is not
``{"time": "<ISO-8601>", "<column>": <number>}`` is counted and skipped.

Create it in the process that uses it (after a fork): kafka-python runs network I/O on
threads of its own.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

__all__ = ["ConsumerThread"]

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Apply = Callable[[list[int], list[float]], None]


def _decode(raw: bytes | None, column: str) -> tuple[int, float] | None:
    try:
        event = json.loads(raw or b"")
        stamp = datetime.fromisoformat(event["time"])
        value = float(event[column])
    except (ValueError, TypeError, KeyError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    delta = stamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000, value


class ConsumerThread(threading.Thread):
    """Polls ``topic`` on ``servers`` and calls ``apply(times_ns, values)`` per batch.

    ``ready`` is set once the partitions are assigned and positioned; ``events`` and
    ``bad_records`` count what was applied and skipped. ``stop()`` ends the loop and closes
    the consumer.
    """

    def __init__(
        self,
        servers: tuple[str, ...],
        topic: str,
        column: str,
        apply: Apply,
        *,
        from_beginning: bool,
    ) -> None:
        super().__init__(name="baseline-consumer", daemon=True)
        self._servers = servers
        self._topic = topic
        self._column = column
        self._apply = apply
        self._from_beginning = from_beginning
        self._stop_event = threading.Event()
        self.ready = threading.Event()
        self.events = 0
        self.bad_records = 0

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self._consume()
            except KafkaError as exc:
                log.warning("kafka error, retrying in 1 s: %s", exc)
                self._stop_event.wait(1.0)

    def _consume(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=list(self._servers),
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=200,
            request_timeout_ms=11_000,
        )
        try:
            partitions = self._partitions(consumer)
            if partitions is None:
                return
            consumer.assign(partitions)
            if self._from_beginning:
                consumer.seek_to_beginning(*partitions)
            else:
                consumer.seek_to_end(*partitions)
            for tp in partitions:
                consumer.position(tp)  # resolve the seek now, so `ready` means positioned
            self.ready.set()
            while not self._stop_event.is_set():
                batches = consumer.poll(timeout_ms=100)
                times: list[int] = []
                values: list[float] = []
                for records in batches.values():
                    for record in records:
                        decoded = _decode(record.value, self._column)
                        if decoded is None:
                            self.bad_records += 1
                            continue
                        times.append(decoded[0])
                        values.append(decoded[1])
                if times:
                    self._apply(times, values)
                    self.events += len(times)
        finally:
            with contextlib.suppress(Exception):
                consumer.close()

    def _partitions(self, consumer: KafkaConsumer) -> list[TopicPartition] | None:
        while not self._stop_event.is_set():
            found = consumer.partitions_for_topic(self._topic)
            if found:
                return [TopicPartition(self._topic, p) for p in sorted(found)]
            time.sleep(0.2)
        return None
