"""The Kafka ends of the freshness measurement, each in a process of its own.

``python -m bench.compare.producer produce BOOTSTRAP TOPIC FIRST_INDEX COUNT RATE`` connects,
prints ``ready``, waits for a line on stdin, sends events ``FIRST_INDEX ..`` at ``RATE`` per
second, and prints one JSON line ``[[index, send time], ...]``.

``python -m bench.compare.producer consume BOOTSTRAP TOPIC FIRST_INDEX COUNT TIMEOUT_S`` is the
control: a bare kafka-python consumer positioned at the end of the topic; it prints ``ready``,
then ``[[index, receive time], ...]`` once it has received events ``FIRST_INDEX ..`` up to
``COUNT`` of them (or the timeout passed). Produce -> receive here is what Kafka and the client
cost on this machine at that moment, with no cache, window or web worker behind it.

Times are ``time.monotonic()``, system-wide on Linux, so the parent compares them with its own
clock. Separate processes keep the times free of the parent's threads competing for its GIL.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.compare.series import END_NS, STEP_NS, event_record

__all__ = ["main"]


def _produce(bootstrap: str, topic: str, first: int, count: int, rate: float) -> list[list[float]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
    try:
        producer.partitions_for(topic)  # metadata fetched before the clock starts
        print("ready", flush=True)
        sys.stdin.readline()
        sent: list[list[float]] = []
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent.append([first + i, time.monotonic()])
            producer.send(topic, event_record(first + i, first_ns=END_NS))
        producer.flush(30)
    finally:
        producer.close(10)
    return sent


def _consume(
    bootstrap: str, topic: str, first: int, count: int, timeout: float
) -> list[list[float]]:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=200
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))
        ]
        consumer.assign(partitions)
        consumer.seek_to_end(*partitions)
        for tp in partitions:
            consumer.position(tp)
        print("ready", flush=True)
        received: list[list[float]] = []
        deadline = time.monotonic() + timeout
        while len(received) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=100).values():
                now = time.monotonic()
                for record in records:
                    stamp = json.loads(record.value)["time"].rstrip("Z")
                    index = (int(np.datetime64(stamp, "ns").astype(np.int64)) - END_NS) // STEP_NS
                    if index >= first:
                        received.append([index, now])
    finally:
        consumer.close()
    return received


def main(argv: list[str]) -> int:
    mode, bootstrap, topic, first, count, last = argv
    if mode == "produce":
        result = _produce(bootstrap, topic, int(first), int(count), float(last))
    else:
        result = _consume(bootstrap, topic, int(first), int(count), float(last))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
