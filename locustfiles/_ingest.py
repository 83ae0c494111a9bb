"""The ingest user: freshness under load, Kafka -> daemon -> shm -> ``/cache`` (imported only
inside Locust; the only module that imports kafka).

Each task produces one event just after the window's newest time, waits for its
acknowledgement (partition, offset), then polls ``GET /cache`` until a generation has consumed
that offset and its window reaches the event's time. The elapsed time from just before the
send to that answer is reported as request type ``INGEST``, name ``kafka -> /cache``, so it
gets its own row (and percentiles) in Locust's statistics; a timeout is a failure. Polls go
through :class:`~locustfiles._http.ServiceClient` and do not count as requests.
"""

from __future__ import annotations

import http.client
import logging
import time
from typing import Any

import gevent
from kafka import KafkaProducer
from kafka.errors import KafkaError
from locust import task

from locustfiles._checks import cache_contains
from locustfiles._config import LoadConfig
from locustfiles._http import ServiceClient
from locustfiles._runtime import RUNTIME
from locustfiles._series import ingest_event, parse_time_ns, seasonal_values
from locustfiles._users import ServiceUser
from locustfiles.errors import FreshnessTimeoutError

__all__ = ["INGEST_NAME", "INGEST_TYPE", "IngestUser", "close_producer"]

log = logging.getLogger(__name__)

INGEST_TYPE = "INGEST"
INGEST_NAME = "kafka -> /cache"

_producer: KafkaProducer | None = None


def _shared_producer(config: LoadConfig) -> KafkaProducer:
    """One producer per process, created by the first ingest task (never before a fork)."""
    global _producer  # noqa: PLW0603 (one client per process, made lazily)
    if _producer is None:
        _producer = KafkaProducer(
            bootstrap_servers=list(config.kafka_bootstrap_servers),
            acks=1,
            linger_ms=0,
            request_timeout_ms=config.ingest_timeout_ms,
            max_block_ms=config.ingest_timeout_ms,
        )
    return _producer


def close_producer() -> None:
    global _producer  # noqa: PLW0603
    if _producer is not None:
        _producer.close(timeout=5)
        _producer = None


class IngestUser(ServiceUser):
    """Produces events to ``KAFKA_TOPIC`` and measures when ``/cache`` shows them."""

    mode = "ingest"

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._watch: ServiceClient | None = None

    def on_start(self) -> None:
        super().on_start()
        assert self.host is not None
        self._watch = ServiceClient(self.host)

    def on_stop(self) -> None:
        if self._watch is not None:
            self._watch.close()

    def _cache(self) -> object:
        assert self._watch is not None
        reply = self._watch.request("GET", "/cache")
        return reply.json() if reply.status == 200 else None

    @task
    def produce_and_watch(self) -> None:
        config = RUNTIME.config
        step = RUNTIME.facts.step_ns
        timeout_s = config.ingest_timeout_ms / 1000.0
        started = time.perf_counter()
        error: Exception | None = None
        try:
            cache = self._cache()
            newest = parse_time_ns(cache.get("time_max")) if isinstance(cache, dict) else None
            when = RUNTIME.next_event_time(newest or 0, step)
            value = seasonal_values([when], self.rng)[0]
            started = time.perf_counter()
            future = _shared_producer(config).send(
                config.kafka_topic, value=ingest_event(when, value, config.column)
            )
            sent = future.get(timeout=timeout_s)
            while not cache_contains(self._cache(), sent.partition, sent.offset, when):
                if time.perf_counter() - started > timeout_s:
                    raise FreshnessTimeoutError(
                        f"event {sent.partition}:{sent.offset} not in /cache after "
                        f"{config.ingest_timeout_ms} ms"
                    )
                gevent.sleep(config.ingest_poll_ms / 1000.0)
        except (KafkaError, OSError, http.client.HTTPException, ValueError) as exc:
            error = exc
        self.environment.events.request.fire(
            request_type=INGEST_TYPE,
            name=INGEST_NAME,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=0,
            exception=error,
            context={},
        )
