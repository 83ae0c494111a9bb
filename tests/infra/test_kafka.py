"""kafka-python 3 against the real broker: manual assignment, end offsets, seek by time, and a
broker restart in the middle of a stream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests._stack import StackHandle

TIMEOUTS: dict[str, Any] = {"request_timeout_ms": 10_000, "reconnect_backoff_max_ms": 500}


@pytest.fixture
def consumer(stack: StackHandle) -> Iterator[KafkaConsumer]:
    client = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
        **TIMEOUTS,
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def producer(stack: StackHandle) -> Iterator[KafkaProducer]:
    client = KafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all", **TIMEOUTS)
    try:
        yield client
    finally:
        client.close(timeout=10)


def drain(consumer: KafkaConsumer, count: int, timeout_s: float = 20.0) -> list[Any]:
    """Poll until ``count`` records arrived (fails on timeout, never hangs)."""
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    assert len(records) == count, f"got {len(records)} of {count} records in {timeout_s} s"
    return records


def test_manual_assign_reads_every_partition_to_the_end_offsets(
    stack: StackHandle, consumer: KafkaConsumer
) -> None:
    topic = stack.new_topic(partitions=3)
    sent = {
        p: [{"time": f"2000-06-05T00:{i:02d}:00Z", "demand_mw": p * 100 + i} for i in range(4)]
        for p in range(3)
    }
    for partition, events in sent.items():
        stack.produce_json(topic, events, partition=partition)

    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    assert len(partitions) == 3
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    assert consumer.end_offsets(partitions) == {tp: 4 for tp in partitions}

    got: dict[int, list[dict[str, Any]]] = {0: [], 1: [], 2: []}
    for record in drain(consumer, 12):
        got[record.partition].append(json.loads(record.value))
    assert got == sent
    assert {tp: consumer.position(tp) for tp in partitions} == {tp: 4 for tp in partitions}


def test_offsets_for_times_seeks_to_the_first_record_at_or_after_a_time(
    stack: StackHandle, producer: KafkaProducer, consumer: KafkaConsumer
) -> None:
    topic = stack.new_topic(partitions=1)
    base_ms = 1_700_000_000_000
    for i in range(10):
        producer.send(
            topic, value=json.dumps({"i": i}).encode(), partition=0, timestamp_ms=base_ms + i * 1000
        )
    producer.flush(timeout=20)
    tp = TopicPartition(topic, 0)

    found = consumer.offsets_for_times({tp: base_ms + 6500})
    assert found[tp] is not None
    assert found[tp].offset == 7
    assert found[tp].timestamp == base_ms + 7000
    assert consumer.offsets_for_times({tp: base_ms + 60_000})[tp] is None

    consumer.assign([tp])
    consumer.seek(tp, found[tp].offset)
    assert [json.loads(r.value)["i"] for r in drain(consumer, 3)] == [7, 8, 9]
    assert consumer.end_offsets([tp]) == {tp: 10}


def test_clients_carry_on_across_a_broker_restart(
    stack: StackHandle, producer: KafkaProducer, consumer: KafkaConsumer
) -> None:
    topic = stack.new_topic(partitions=1)
    tp = TopicPartition(topic, 0)
    for i in range(5):
        producer.send(topic, value=json.dumps({"i": i}).encode(), partition=0)
    producer.flush(timeout=20)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    assert [json.loads(r.value)["i"] for r in drain(consumer, 5)] == list(range(5))

    stack.stop_kafka()
    try:
        assert consumer.poll(timeout_ms=300) == {}
    finally:
        restart_s = stack.start_kafka()
    assert restart_s < 60

    # The same producer and consumer reconnect by themselves: no loss, no duplicate.
    for i in range(5, 10):
        producer.send(topic, value=json.dumps({"i": i}).encode(), partition=0)
    producer.flush(timeout=30)
    assert [json.loads(r.value)["i"] for r in drain(consumer, 5, timeout_s=30)] == list(
        range(5, 10)
    )
    assert consumer.end_offsets([tp]) == {tp: 10}


def test_a_hard_killed_broker_recovers_its_log(stack: StackHandle, consumer: KafkaConsumer) -> None:
    topic = stack.new_topic(partitions=2)
    stack.produce_json(topic, [{"i": i} for i in range(6)], partition=1)

    stack.stop_kafka(hard=True)
    stack.start_kafka()

    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    assert consumer.end_offsets(tps) == {tps[0]: 0, tps[1]: 6}
    assert [json.loads(r.value)["i"] for r in drain(consumer, 6)] == list(range(6))


def test_a_broker_restarted_from_another_thread_outlives_that_thread(stack: StackHandle) -> None:
    # The servers are tied to the test process by a parent-death signal, which Linux sends when
    # the forking *thread* ends: a restart from a helper thread must not kill the new broker.
    def restart() -> float:
        stack.stop_kafka()
        return stack.start_kafka()

    with ThreadPoolExecutor(max_workers=1) as pool:  # its thread has ended after the block
        restarted = pool.submit(restart)
    assert restarted.result(timeout=0) < 60
    time.sleep(1.0)  # a parent-death signal would have been delivered by now
    topic = stack.new_topic(1)
    assert stack.produce_json(topic, [{"i": 1}]) == [(0, 0)]
