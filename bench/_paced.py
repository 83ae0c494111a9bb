"""A paced stream of events and its control, each in a process of its own.

:class:`PacedRun` starts a producer that will send ``records(first + i)`` (with the key
``keys(first + i)`` when ``keys`` is given) for ``i`` in ``range(count)`` to a one-partition
topic at ``rate`` per second, and a bare kafka-python
consumer positioned at the end of that topic: the control, what Kafka and the client cost on
this machine at that moment with no cache, window or web worker behind them. Both connect
first, freeze what they allocated so far (:func:`bench._proc.freeze_heap`: no full collection
of their imports pauses them mid-run) and start on :meth:`PacedRun.go`. Times are
``time.monotonic()``, system-wide on Linux, so the caller compares them with its own clock;
separate processes keep them free of the caller's threads competing for its GIL.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event

import numpy as np
import numpy.typing as npt
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench._proc import freeze_heap

__all__ = ["PacedRun"]

Records = Callable[[int], bytes]
Keys = Callable[[int], bytes | None]
_CTX = multiprocessing.get_context("spawn")


def _produce(
    bootstrap: str,
    topic: str,
    records: Records,
    first: int,
    rate: float,
    sent: SynchronizedArray[float],
    ready: Event,
    go: Event,
    keys: Keys | None = None,
) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    try:
        producer.partitions_for(topic)  # connected, metadata fetched before the clock starts
        freeze_heap()
        ready.set()
        go.wait()
        start = time.monotonic()
        for i in range(len(sent)):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent[i] = time.monotonic()
            producer.send(topic, records(first + i), key=keys(first + i) if keys else None)
        producer.flush(30)
    finally:
        producer.close(10)


def _consume(
    bootstrap: str,
    topic: str,
    rate: float,
    received: SynchronizedArray[float],
    ready: Event,
    go: Event,
) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=200,
        metrics_enabled=False,
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_end(tp)
        start = consumer.position(tp)  # the seek resolved now: `ready` means positioned
        freeze_heap()
        ready.set()
        go.wait()
        deadline = time.monotonic() + len(received) / rate + 30
        seen = 0
        while seen < len(received) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                now = time.monotonic()
                for record in batch:
                    if 0 <= record.offset - start < len(received):
                        received[record.offset - start] = now
                        seen += 1
    finally:
        consumer.close()


class PacedRun:
    """The producer and the control consumer of one run, connected and waiting for
    :meth:`go` (see the module docstring); leaving the context ends both."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        records: Records,
        *,
        first: int,
        count: int,
        rate: float,
        keys: Keys | None = None,
    ) -> None:
        self._duration = count / rate
        self._sent = _CTX.Array("d", [float("nan")] * count)
        self._received = _CTX.Array("d", [float("nan")] * count)
        self._go = _CTX.Event()
        ready = [_CTX.Event(), _CTX.Event()]
        self._procs = [
            _CTX.Process(
                target=_consume,
                args=(bootstrap, topic, rate, self._received, ready[0], self._go),
                daemon=True,
            ),
            _CTX.Process(
                target=_produce,
                args=(
                    bootstrap,
                    topic,
                    records,
                    first,
                    rate,
                    self._sent,
                    ready[1],
                    self._go,
                    keys,
                ),
                daemon=True,
            ),
        ]
        for proc in self._procs:
            proc.start()
        deadline = time.monotonic() + 90
        for proc, event in zip(self._procs, ready, strict=True):
            while not event.wait(0.1):
                if not proc.is_alive() or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"the paced run's {proc.name} did not connect")

    def __enter__(self) -> PacedRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def go(self) -> None:
        """Start producing (returns at once)."""
        self._go.set()

    def sent(self) -> npt.NDArray[np.float64]:
        """Send time of each event (NaN: not sent); waits for the producer."""
        self._procs[1].join(self._duration + 60)
        return np.array(self._sent[:], dtype=np.float64)

    def received(self) -> npt.NDArray[np.float64]:
        """Time the control consumer received each event (NaN: not received); waits for it."""
        self._procs[0].join(self._duration + 60)
        return np.array(self._received[:], dtype=np.float64)

    def close(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(5)
