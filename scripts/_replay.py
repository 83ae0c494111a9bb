"""The Kafka side of ``scripts.seed``: make sure the topic exists, send JSON, collect errors.

The producer waits for every acknowledgement (``acks="all"``) before the context exits and
is always closed, so its I/O thread never outlives the replay.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from scripts.errors import SeedError

__all__ = ["open_producer"]

_TIMEOUTS: dict[str, Any] = {"request_timeout_ms": 15_000, "bootstrap_timeout_ms": 15_000}


def _ensure_topic(bootstrap_servers: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="seed", **_TIMEOUTS)
    try:
        if topic in set(admin.list_topics()):
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(
                [NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
            )
    finally:
        admin.close()


@contextlib.contextmanager
def open_producer(
    bootstrap_servers: str, topic: str, *, partitions: int
) -> Iterator[Callable[[Mapping[str, Any], bytes | None], None]]:
    """Yield ``send(event, key)`` (``key`` None: a record without a key, on any partition; else
    the producer's partition of the key); on exit flush, check every delivery, close.

    Raises ``SeedError`` when the broker is unreachable or a record was not acknowledged.
    """
    try:
        _ensure_topic(bootstrap_servers, topic, partitions)
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            client_id="seed",
            acks="all",
            linger_ms=20,
            **_TIMEOUTS,
        )
    except KafkaError as exc:
        raise SeedError(f"Kafka at {bootstrap_servers}: {exc}") from None
    failures: list[BaseException] = []

    def send(event: Mapping[str, Any], key: bytes | None) -> None:
        if failures:
            raise SeedError(f"Kafka rejected a record: {failures[0]}")
        value = json.dumps(event, separators=(",", ":")).encode()
        future = producer.send(topic, value=value, key=key)
        future.add_errback(failures.append)

    try:
        yield send
        producer.flush(timeout=60)
    except KafkaError as exc:
        raise SeedError(f"Kafka at {bootstrap_servers}: {exc}") from None
    finally:
        producer.close(timeout=10)
    if failures:
        raise SeedError(f"{len(failures)} records were not acknowledged: {failures[0]}")
