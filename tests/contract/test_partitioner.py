"""contract.partitioner.partition_of is Kafka's default partitioner for keyed records.

Three witnesses: the Java client's own murmur2 test vectors (Apache Kafka's
``UtilsTest.testMurmur2``), the partitioner kafka-python's producer uses by default (over
random series ids), and a real broker: records sent with a key and no partition land where
``partition_of`` says.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2

from contract.partitioner import partition_of
from contract.series import MAX_SERIES_ID_BYTES
from tests._stack import StackHandle

series_ids = st.text(min_size=1).filter(lambda t: len(t.encode()) <= MAX_SERIES_ID_BYTES)

# Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def test_murmur2_is_the_java_clients() -> None:
    for key, java in JAVA_MURMUR2.items():
        assert _signed(murmur2(key)) == java, key
        # Java: Utils.toPositive(murmur2(key)) % n
        for n in (1, 3, 12, 50, 1000):
            assert partition_of(key.decode(), n) == (java & 0x7FFFFFFF) % n
    assert partition_of("foobar", 50) == 16


class _Topic:
    """The cluster view a kafka-python partitioner reads: one topic and its partitions."""

    def __init__(self, name: str, partitions: int) -> None:
        self.name, self.ids = name, set(range(partitions))

    def topics(self) -> set[str]:
        return {self.name}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.ids

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.ids


@given(series_ids, st.integers(1, 10_000))
def test_partition_of_agrees_with_the_producers_default_partitioner(
    series_id: str, partitions: int
) -> None:
    partitioner = KafkaProducer.DEFAULT_CONFIG["partitioner"]
    key = series_id.encode()
    cluster = _Topic("t", partitions)
    expected = partitioner.partition("t", series_id, key, None, b"{}", cluster)
    assert partition_of(series_id, partitions) == expected
    assert 0 <= expected < partitions


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_of("a", 0)


@pytest.mark.integration
def test_a_real_broker_stores_keyed_records_where_partition_of_says(stack: StackHandle) -> None:
    partitions = 12
    topic = stack.new_topic(partitions, prefix="keyed")
    ids = [f"meter-{i}" for i in range(200)]
    ids += [secrets.token_urlsafe(n) for n in range(1, 97)]
    ids += ["défaut", "店舗-42/SKU-7", "🙂" * 32, "x" * MAX_SERIES_ID_BYTES]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all", linger_ms=5)
    try:
        futures = [
            producer.send(topic, key=sid.encode(), value=json.dumps({"id": sid}).encode())
            for sid in ids
        ]
        producer.flush(timeout=30)
        landed = [future.get(timeout=30).partition for future in futures]
    finally:
        producer.close(timeout=10)
    assert landed == [partition_of(sid, partitions) for sid in ids]
    assert len(set(landed)) == partitions  # the ids spread over every partition
    # What the broker stores, read back partition by partition.
    stored = _read_keys(stack, topic, partitions, len(ids))
    assert sorted(stored) == sorted((partition_of(sid, partitions), sid) for sid in ids)


def _read_keys(
    stack: StackHandle, topic: str, partitions: int, count: int
) -> list[tuple[int, str]]:
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        out: list[tuple[int, str]] = []
        deadline = time.monotonic() + 30
        while len(out) < count and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=500).items():
                out += [(tp.partition, r.key.decode()) for r in records]
        return out
    finally:
        consumer.close()
