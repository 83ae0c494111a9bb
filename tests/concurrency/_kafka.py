"""Producing the test stream: one producer per test, and a paced producer thread.

Every client made here is closed by its owner before the test ends (kafka-python runs a
background thread per client). Producers are created after Gunicorn and the daemon were
started (subprocesses are exec'd, so no client ever crosses a fork).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests._stack import StackHandle
from tests.concurrency._series import event

__all__ = ["Pacer", "Producer", "end_offset", "read_topic"]

_TIMEOUTS: dict[str, Any] = {
    "request_timeout_ms": 10_000,
    "reconnect_backoff_max_ms": 500,
}


class Producer:
    """Sends events by index (or raw bytes) to partition 0 of ``topic``; remembers the offset
    of every event index it had acknowledged."""

    def __init__(self, stack: StackHandle, topic: str, *, linger_ms: int = 2) -> None:
        self.topic = topic
        self.offsets: dict[int, int] = {}
        self._producer = KafkaProducer(
            bootstrap_servers=stack.bootstrap_servers,
            acks="all",
            linger_ms=linger_ms,
            max_in_flight_requests_per_connection=1,
            **_TIMEOUTS,
        )

    def send(self, indices: Iterable[int]) -> list[int]:
        """Send events ``indices`` in order, wait for the acks, return their offsets."""
        pending = [(i, self._send(json.dumps(event(i)).encode())) for i in indices]
        self._producer.flush(timeout=30)
        result = []
        for i, future in pending:
            offset = future.get(timeout=30).offset
            self.offsets[i] = offset
            result.append(offset)
        return result

    def send_async(self, indices: Iterable[int]) -> list[tuple[int, Any]]:
        """Send events ``indices`` without waiting; :meth:`settle` the returned futures."""
        return [(i, self._send(json.dumps(event(i)).encode())) for i in indices]

    def settle(self, pending: list[tuple[int, Any]]) -> None:
        """Wait for the acks of :meth:`send_async` futures and remember their offsets."""
        self._producer.flush(timeout=30)
        for i, future in pending:
            self.offsets[i] = future.get(timeout=30).offset

    def send_raw(self, values: Iterable[bytes]) -> list[int]:
        """Send raw record values (poison included), wait for the acks, return the offsets."""
        pending = [self._send(value) for value in values]
        self._producer.flush(timeout=30)
        return [future.get(timeout=30).offset for future in pending]

    def send_keyed(self, records: Iterable[tuple[bytes, bytes]]) -> list[int]:
        """Send ``(key, value)`` records (the key names the series), wait for the acks,
        return the offsets."""
        pending = [self._send(value, key) for key, value in records]
        self._producer.flush(timeout=60)
        return [future.get(timeout=60).offset for future in pending]

    def _send(self, value: bytes, key: bytes | None = None) -> Any:
        return self._producer.send(self.topic, value=value, key=key, partition=0)

    def close(self) -> None:
        self._producer.close(timeout=10)


class Pacer:
    """A thread sending events ``first, first+1, ...`` at about ``rate`` per second in small
    batches until ``count`` were sent or :meth:`stop`; ``extra(i)`` may return raw records to
    send after event ``i`` (poison). ``wait_acks=False`` keeps sending without waiting for each
    batch's acknowledgement (the fastest stream; acks are collected at the end)."""

    def __init__(
        self,
        producer: Producer,
        *,
        first: int,
        count: int,
        rate: float,
        batch: int = 10,
        extra: Any = None,
        wait_acks: bool = True,
    ) -> None:
        self.producer = producer
        self.first, self.count, self.rate, self.batch = first, count, rate, batch
        self.extra = extra
        self.wait_acks = wait_acks
        self.sent = 0
        self.raw_offsets: list[tuple[bytes, int]] = []
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pacer", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        pending: list[tuple[int, Any]] = []
        try:
            while self.sent < self.count and not self._stop.is_set():
                n = min(self.batch, self.count - self.sent)
                start = self.first + self.sent
                if self.wait_acks:
                    self.producer.send(range(start, start + n))
                else:
                    pending += self.producer.send_async(range(start, start + n))
                if self.extra is not None:
                    raws = [r for i in range(start, start + n) for r in self.extra(i)]
                    if raws:
                        offsets = self.producer.send_raw(raws)
                        self.raw_offsets += list(zip(raws, offsets, strict=True))
                self.sent += n
                ahead = started + self.sent / self.rate - time.monotonic()
                if ahead > 0:
                    self._stop.wait(ahead)
            self.producer.settle(pending)
        except Exception as exc:  # noqa: BLE001 (reported to the test by join())
            self.error = exc

    def start(self) -> Pacer:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the producer did not finish"
        assert self.error is None, self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


def end_offset(stack: StackHandle, topic: str) -> int:
    """The end offset of partition 0 of ``topic``."""
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap_servers, **_TIMEOUTS)
    try:
        tp = TopicPartition(topic, 0)
        return int(consumer.end_offsets([tp])[tp])
    finally:
        consumer.close()


def read_topic(
    stack: StackHandle, topic: str, *, expected: int, timeout: float = 30.0
) -> list[Any]:
    """Every record of partition 0 of ``topic`` (waits until ``expected`` were read)."""
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **_TIMEOUTS,
    )
    records: list[Any] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records
