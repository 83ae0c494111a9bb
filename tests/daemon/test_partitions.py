"""A shard's daemon (KAFKA_PARTITIONS) against the real broker of the test stack: it reads,
records, resumes and measures only its own partitions, and a topic that does not fit the
configuration is reported naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions

from cache_daemon.config import DaemonConfig
from contract.errors import ConfigError
from contract.metadata import Counters
from shm import Reader
from tests._stack import StackHandle
from tests.daemon._helpers import event, running, wait_for, wait_status
from tests.daemon.test_integration import config, covers, offsets, values_by_index

PARTITIONS = 4
OWNED = (1, 3)


def produce_round_robin(stack: StackHandle, topic: str, indices: range) -> None:
    """Event ``i`` (value ``i``) into partition ``i % PARTITIONS``."""
    for p in range(PARTITIONS):
        events = [event(i, float(i)) for i in indices if i % PARTITIONS == p]
        stack.produce_json(topic, events, partition=p)


def test_a_shard_reads_records_and_resumes_only_its_partitions(
    stack: StackHandle, shm_dir: Path
) -> None:
    topic = stack.new_topic(PARTITIONS)
    produce_round_robin(stack, topic, range(40))
    cfg = config(stack, shm_dir, topic, KAFKA_PARTITIONS="1,3", KAFKA_PARTITION_COUNT="4")
    reader = Reader(shm_dir)
    with running(cfg):
        first = wait_for(reader, covers({1: 10, 3: 10}), what="owned partitions read")
        # Lag is measured for the owned partitions only.
        wait_status(
            shm_dir,
            lambda s: s["state"] == "live" and s["lag"] == {"1": 0, "3": 0},
            what="live, no lag",
        )
    assert offsets(first) == {1: 10, 3: 10}
    assert values_by_index(first) == {i: float(i) for i in range(40) if i % PARTITIONS in OWNED}

    # A restart resumes from the last generation's offsets: the owned partitions' new records
    # are read once, the others' still never.
    produce_round_robin(stack, topic, range(40, 80))
    with running(cfg):
        final = wait_for(reader, covers({1: 20, 3: 20}), what="resumed")
        wait_status(shm_dir, lambda s: s["lag"] == {"1": 0, "3": 0}, what="no lag")
    assert final.generation > first.generation
    assert offsets(final) == {1: 20, 3: 20}
    assert values_by_index(final) == {i: float(i) for i in range(80) if i % PARTITIONS in OWNED}
    assert Counters.from_json(final.metadata["counters"]).events == 40


def test_recorded_offsets_of_other_partitions_are_dropped(
    stack: StackHandle, shm_dir: Path
) -> None:
    """A pod that read every partition becomes a shard: it keeps its own partitions' positions
    and forgets the others'."""
    topic = stack.new_topic(PARTITIONS)
    produce_round_robin(stack, topic, range(8))
    reader = Reader(shm_dir)
    with running(config(stack, shm_dir, topic)):
        wait_for(reader, covers(dict.fromkeys(range(PARTITIONS), 2)), what="all partitions")
    produce_round_robin(stack, topic, range(8, 16))
    with running(config(stack, shm_dir, topic, KAFKA_PARTITIONS="1,3")):
        snap = wait_for(reader, lambda s: offsets(s) == {1: 4, 3: 4}, what="owned only")
    # The window the full pod published is the shard's start; only owned records follow it.
    assert values_by_index(snap) == {i: float(i) for i in range(8)} | {
        i: float(i) for i in range(8, 16) if i % PARTITIONS in OWNED
    }


def test_partitions_the_topic_lacks_are_an_error_until_it_has_them(
    stack: StackHandle, shm_dir: Path
) -> None:
    topic = stack.new_topic(2)
    stack.produce_json(topic, [event(0, 0.5)], partition=1)
    cfg = config(stack, shm_dir, topic, KAFKA_PARTITIONS="1-3")
    with running(cfg):
        status = wait_status(
            shm_dir,
            lambda s: "KAFKA_PARTITIONS" in str(s["last_error"]),
            what="the error names the variable",
        )
        assert status["state"] == "degraded" and status["generation"] == 0
        assert f"KAFKA_PARTITIONS names 2-3, which topic '{topic}' has 2 (0-1) lacks" in str(
            status["last_error"]
        )
        admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
        try:
            admin.create_partitions({topic: NewPartitions(total_count=4)})
        finally:
            admin.close()
        # The connection is retried with backoff (at most 10 s apart): the new partitions
        # are then read with partition 1.
        snap = wait_for(Reader(shm_dir), covers({1: 1}), timeout=40, what="read once it fits")
        wait_status(shm_dir, lambda s: s["last_error"] is None, what="error cleared")
    assert offsets(snap) == {1: 1, 2: 0, 3: 0}
    assert values_by_index(snap) == {0: 0.5}


def test_a_partition_count_other_than_the_topics_is_an_error(
    stack: StackHandle, shm_dir: Path
) -> None:
    topic = stack.new_topic(3)
    cfg = config(stack, shm_dir, topic, KAFKA_PARTITIONS="0-1", KAFKA_PARTITION_COUNT="4")
    with running(cfg):
        status = wait_status(
            shm_dir, lambda s: "KAFKA_PARTITION_COUNT" in str(s["last_error"]), what="error"
        )
    assert status["state"] == "degraded"
    assert f"KAFKA_PARTITION_COUNT is 4 but topic '{topic}' has 3 (0-2)" in status["last_error"]


def test_partitions_need_the_kafka_source() -> None:
    with pytest.raises(ConfigError, match=r"^KAFKA_PARTITIONS: applies to DAEMON_SOURCE=kafka"):
        DaemonConfig.from_env({"KAFKA_PARTITIONS": "0-5"})
    cfg = DaemonConfig.from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_PARTITIONS": "0-5"}
    )
    assert cfg.kafka_partitions == frozenset(range(6))
