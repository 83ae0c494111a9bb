"""The handle the ``stack`` fixture gives to integration tests (see ``tests/conftest.py``).

It wraps one ``scripts.stack.Stack`` started on free loopback ports for the whole test session
and adds what tests need: unique topics and buckets, a JSON producer helper, clients with short
timeouts, and a broker stop/start for restart tests. Every Kafka client it creates is closed
before the method returns, so no background thread outlives a call (tests may fork afterwards).
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from minio import Minio

from scripts.errors import MissingToolError, StackError
from scripts.stack import Stack, StackConfig

__all__ = ["StackHandle", "free_ports", "start_stack"]

_KAFKA_TIMEOUTS: dict[str, Any] = {
    "request_timeout_ms": 10_000,
    "bootstrap_timeout_ms": 10_000,
    "reconnect_backoff_max_ms": 500,
}


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports that were free a moment ago (bound together, then
    released, so they differ from each other)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def start_stack(environ: Mapping[str, str], state_dir: Path) -> tuple[Stack, dict[str, float]]:
    """Start a stack in ``state_dir`` on fresh free ports, tied to this process.

    Free ports can be taken by someone else between the choice and the bind: on a start-up
    failure it tries once more with new ports.
    """
    last: Exception | None = None
    for attempt in range(2):
        kafka_port, controller_port, s3_port = free_ports(3)
        config = StackConfig.from_env(
            environ,
            state_dir=state_dir / f"attempt-{attempt}",
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            s3_port=s3_port,
            start_timeout_s=120.0,
        )
        stack = Stack(config, tie_to_parent=True)
        try:
            return stack, stack.up()
        except MissingToolError:
            raise
        except StackError as exc:
            stack.down()
            last = exc
    assert last is not None
    raise last


class StackHandle:
    """What integration tests use: addresses, keys, and helpers over one running stack.

    Attributes: ``bootstrap_servers`` ("127.0.0.1:<port>"), ``s3_endpoint`` ("127.0.0.1:<port>"),
    ``s3_access_key``, ``s3_secret_key``, ``s3_region``, ``kafka_log`` and ``s3_log`` (paths to
    read when something fails), ``start_times`` (seconds until each server answered).
    """

    def __init__(self, stack: Stack, start_times: Mapping[str, float]) -> None:
        self._stack = stack
        self.start_times = dict(start_times)
        self.bootstrap_servers = stack.bootstrap_servers
        self.s3_endpoint = stack.s3_endpoint
        self.s3_access_key = stack.config.s3_access_key
        self.s3_secret_key = stack.config.s3_secret_key
        self.s3_region = stack.config.s3_region
        self.kafka_log = stack.kafka_log
        self.s3_log = stack.s3_log

    def env(self, **extra: str) -> dict[str, str]:
        """The project's variables for a subprocess (KAFKA_BOOTSTRAP_SERVERS, S3_ENDPOINT,
        S3_ACCESS_KEY, S3_SECRET_KEY, S3_SECURE, S3_REGION) plus ``extra``; merge it into
        ``os.environ`` yourself when the child needs PATH and the rest."""
        return {**self._stack.env(), **extra}

    # -- Kafka -------------------------------------------------------------------------------
    def new_topic(self, partitions: int = 1, *, prefix: str = "topic") -> str:
        """Create a topic with a unique name and ``partitions`` partitions; return its name once
        every partition has a leader."""
        name = f"{prefix}-{secrets.token_hex(5)}"
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap_servers, **_KAFKA_TIMEOUTS)
        try:
            admin.create_topics(
                [NewTopic(name=name, num_partitions=partitions, replication_factor=1)]
            )
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                described = admin.describe_topics([name])
                parts = described[0].get("partitions") or [] if described else []
                if len(parts) == partitions and all(p.get("leader_id", -1) >= 0 for p in parts):
                    return name
                time.sleep(0.05)
        finally:
            admin.close()
        raise TimeoutError(f"topic {name} has no leader for all {partitions} partitions after 15 s")

    def produce_json(
        self,
        topic: str,
        events: Iterable[Mapping[str, Any] | bytes],
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        keys: Iterable[bytes | None] | None = None,
    ) -> list[tuple[int, int]]:
        """Send each event (a mapping is JSON-encoded, bytes are sent as they are) with the
        key at the same place in ``keys`` (default: none), wait for every acknowledgement,
        and return ``(partition, offset)`` per event in order. Without ``partition`` a keyed
        record goes to the partition of its key (the producer's partitioner)."""
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", linger_ms=5, **_KAFKA_TIMEOUTS
        )
        try:
            futures = []
            key_list = list(keys) if keys is not None else None
            for i, event in enumerate(events):
                value = event if isinstance(event, bytes) else json.dumps(event).encode()
                key = key_list[i] if key_list is not None else None
                futures.append(
                    producer.send(topic, value=value, key=key, partition=partition, headers=headers)
                )
            producer.flush(timeout=30)
            metadata = [future.get(timeout=30) for future in futures]
        finally:
            producer.close(timeout=10)
        return [(m.partition, m.offset) for m in metadata]

    def stop_kafka(self, *, hard: bool = False) -> None:
        """Stop the broker (clean shutdown, or SIGKILL with ``hard``); its data is kept."""
        self._stack.stop_kafka(hard=hard)

    def start_kafka(self) -> float:
        """Start the broker again on the same port and data; seconds until it answered."""
        return self._stack.start_kafka()

    # -- S3 ----------------------------------------------------------------------------------
    def minio(self, *, timeout_s: float = 5.0, secret_key: str | None = None) -> Minio:
        """A ``minio`` client for the stack with short timeouts and no retries (pass a wrong
        ``secret_key`` to test authentication failures)."""
        return self._stack.minio(timeout_s=timeout_s, secret_key=secret_key)

    def new_bucket(self, *, prefix: str = "bucket") -> str:
        """Create a bucket with a unique name and return the name."""
        name = f"{prefix}-{secrets.token_hex(5)}"
        self.minio().make_bucket(bucket_name=name)
        return name
