"""The broker of the benchmarks: the project's local stack on free loopback ports, new topics."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from bench._proc import free_ports
from scripts.errors import StackError
from scripts.stack import Stack, StackConfig

__all__ = ["new_topic", "start_stack"]


def start_stack(state_dir: Path) -> Stack:
    """Kafka (and the stack's S3 server) tied to this process; ``Stack.down()`` stops it.

    Raises ``StackError`` (e.g. no Java or Maven) after cleaning up.
    """
    kafka_port, controller_port, s3_port = free_ports(3)
    config = StackConfig.from_env(
        os.environ,
        state_dir=state_dir,
        kafka_port=kafka_port,
        kafka_controller_port=controller_port,
        s3_port=s3_port,
        start_timeout_s=180.0,
    )
    stack = Stack(config, tie_to_parent=True)
    try:
        stack.up()
    except StackError:
        stack.down()
        raise
    return stack


def new_topic(bootstrap: str, prefix: str, *, partitions: int = 1) -> str:
    """A new topic whose partitions all have a leader; returns its name."""
    name = f"{prefix}-{secrets.token_hex(4)}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=1)])
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            described = admin.describe_topics([name])
            parts = (described[0].get("partitions") or []) if described else []
            if len(parts) == partitions and all(p.get("leader_id", -1) >= 0 for p in parts):
                return name
            time.sleep(0.05)
    finally:
        admin.close()
    raise TimeoutError(f"topic {name} has no leader after 15 s")
