"""Session-wide fixtures: the real Kafka + S3 stack for integration tests.

One stack (Apache Kafka 4 in KRaft mode and s3proxy, see ``scripts/stack.py``) is started on
FREE loopback ports chosen at run time, the first time a test asks for it, and stopped at the end
of the session; it never collides with a dev stack from ``make stack-up`` or with another test
run. Its servers die with the pytest process even when that is killed. The first run on a fresh
machine downloads the pinned jars into ``.cache/`` (no system Java or Maven needed: the JDK
comes with the dev dependencies); later runs reuse them.

Any test that uses one of these fixtures is marked ``integration`` automatically, so
``pytest -m "not integration"`` never starts the stack.

Fixtures
--------
``stack`` (session): a ``tests._stack.StackHandle`` with
    - ``bootstrap_servers`` ("127.0.0.1:<port>"), ``s3_endpoint`` ("127.0.0.1:<port>"),
      ``s3_access_key``, ``s3_secret_key``, ``s3_region``;
    - ``env(**extra) -> dict``: KAFKA_BOOTSTRAP_SERVERS, S3_ENDPOINT, S3_ACCESS_KEY,
      S3_SECRET_KEY, S3_SECURE, S3_REGION (merge into ``os.environ`` for a subprocess);
    - ``new_topic(partitions=1, *, prefix="topic") -> str``: a new unique topic, leaders elected;
    - ``produce_json(topic, events, *, partition=None, headers=None, keys=None)
      -> [(partition, offset)]``: sends dicts as JSON (bytes as they are), each with its key
      from ``keys``, and waits for the acks;
    - ``new_bucket(*, prefix="bucket") -> str``: a new unique bucket;
    - ``minio(*, timeout_s=5.0, secret_key=None) -> Minio``: short timeouts, no retries;
    - ``stop_kafka(*, hard=False)`` / ``start_kafka() -> seconds``: broker restart on the same
      port with the same data (clean shutdown, or SIGKILL with ``hard=True``);
    - ``kafka_log`` / ``s3_log``: server log files, ``start_times``: seconds until each answered.
    Tests that stop the broker must start it again before they end (use ``try/finally``);
    ``stop_kafka``/``start_kafka`` may be called from any thread.
``kafka_topic`` (function): a fresh one-partition topic name.
``s3_bucket`` (function): a fresh bucket name.
``stack_env`` (function): ``stack.env()``.

Clients created by tests must be closed by them (kafka-python runs a background thread per client;
never create one before a fork).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests._stack import StackHandle, start_stack

STACK_FIXTURES = frozenset({"stack", "kafka_topic", "s3_bucket", "stack_env"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackHandle]:
    """The running stack for this session (see the module docstring)."""
    started, times = start_stack(os.environ, tmp_path_factory.mktemp("stack"))
    try:
        yield StackHandle(started, times)
    finally:
        started.down()


@pytest.fixture
def kafka_topic(stack: StackHandle) -> str:
    """A new one-partition topic, unique to this test."""
    return stack.new_topic(1)


@pytest.fixture
def s3_bucket(stack: StackHandle) -> str:
    """A new bucket, unique to this test."""
    return stack.new_bucket()


@pytest.fixture
def stack_env(stack: StackHandle) -> dict[str, str]:
    """The project's Kafka/S3 environment variables pointing at the stack."""
    return stack.env()
