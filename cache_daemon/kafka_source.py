"""The Kafka source and dead-letter producer (the only module that imports kafka-python).

Consumer rules (every replica needs the whole stream, so there is no consumer group):

* ``assign()`` every partition of the topic, ``group_id=None``, no auto-commit: the positions
  that matter are the ones the daemon records in each generation.
* A shard (``KAFKA_PARTITIONS``) assigns only its own partitions; positions, lag, restoring
  and new-partition checks cover those alone, and recorded offsets of other partitions are
  dropped at start. An owned partition the topic does not have, or a partition count other
  than ``KAFKA_PARTITION_COUNT``, is an error naming the variable: at connection it stops the
  attempt (retried with backoff, so a topic that gains the partitions is then read); found
  later by the partition re-check it is reported in the health until resolved, while the
  owned partitions are still read.
* Start positions: the bootstrap's offsets where it has them; a partition it does not know is
  new and is read from its beginning. Without any bootstrap offsets, seek with
  ``offsets_for_times(now - window duration)``, or from the beginning without a duration bound.
* Restoring ends when every partition reaches the end offset seen at start (``caught_up``).
* Partitions are re-checked every few seconds (metadata refresh is 5 s); new ones are added.
* Keys and values stay bytes (no deserializer): naming the series by the key and decoding the
  value are the daemon's job. A dead letter keeps the record's key and value as they were.

Faults: a broker that is down or a topic that does not exist never raises out of this class.
Connecting (bootstrap, metadata, seeks) runs on a helper thread because kafka-python can wait
there without bound; :meth:`KafkaSource.poll` waits for it in slices, retries failures with
backoff (0.5 s doubling to 10 s) and reports through :meth:`KafkaSource.health`. Once
connected, kafka-python reconnects on its own. Lag comes from the fetches' high-water marks
while records flow; after a second without records an ``end_offsets`` probe (500 ms timeout)
measures it and notices an outage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from cache_daemon.sources import Health, Record
from contract.partitions import format_partitions

__all__ = ["KafkaSource"]

log = logging.getLogger(__name__)

# A cap, not a guess: kafka-python still asks the broker for its versions and uses the lower.
# Setting it skips the constructor's blocking bootstrap, which leaks a thread when it fails.
_API_VERSION = (4, 0)
_LAG_EVERY_S = 1.0
_PARTITIONS_EVERY_S = 5.0
_REQUEST_TIMEOUT_MS = 5000
_MAX_POLL_RECORDS = 5000


class KafkaSource:
    """A :class:`~cache_daemon.sources.Source` reading every partition of ``topic``, or only
    ``partitions`` when given (a shard; ``partition_count`` is then checked against the
    topic when given, see the module docstring)."""

    kind = "kafka"

    def __init__(
        self,
        *,
        servers: tuple[str, ...],
        topic: str,
        dlq_topic: str,
        seek_back_ms: int | None,
        partitions: frozenset[int] | None = None,
        partition_count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._servers = list(servers)
        self._topic = topic
        self._dlq_topic = dlq_topic
        self._seek_back_ms = seek_back_ms
        self._owned = partitions
        self._partition_count = partition_count
        self._layout_error: str | None = None
        self._clock = clock
        self._consumer: Any = None
        self._letters = _DeadLetters(self._servers, topic=topic, dlq_topic=dlq_topic)
        self._ready = False
        self._wanted: dict[int, int] | None = None
        self._positions: dict[int, int] = {}
        self._targets: dict[int, int] = {}
        self._caught_up = False
        self._lag: dict[int, int] = {}
        self._connected = False
        self._error: str | None = None
        self._retry_at = 0.0
        self._backoff = 0.5
        self._connect_thread: threading.Thread | None = None
        self._connect_done = threading.Event()
        self._connect_error: str | None = None
        self._connect_started = 0.0
        self._connect_started_wall = 0.0
        self._next_lag = 0.0
        self._last_records = -1e9
        self._next_partitions = 0.0

    # -- Source interface ------------------------------------------------------------------

    def start(self, offsets: Mapping[int, int] | None, *, resume_after_ns: int | None) -> None:
        """Remember where to start; the connection is made lazily by :meth:`poll`."""
        del resume_after_ns
        if offsets is not None and self._owned is not None:
            others = sorted(p for p in offsets if p not in self._owned)
            if others:
                log.info(
                    "recorded offsets of partitions not in KAFKA_PARTITIONS are dropped",
                    extra={"partitions": others},
                )
            offsets = {p: o for p, o in offsets.items() if p in self._owned}
        self._wanted = dict(offsets) if offsets is not None else None
        self._positions = dict(offsets or {})

    def poll(self, timeout_s: float) -> list[Record]:
        """Records from every assigned partition; ``[]`` while disconnected (never raises)."""
        now = self._clock()
        if not self._ready:
            self._drive_connect(now, timeout_s)
            if not self._ready:
                return []
        if now >= self._next_partitions:
            self._next_partitions = now + _PARTITIONS_EVERY_S
            self._check_partitions()
        if now >= self._next_lag:
            self._next_lag = now + _LAG_EVERY_S
            self._measure_lag()
        try:
            batches = self._consumer.poll(
                timeout_ms=int(timeout_s * 1000), max_records=_MAX_POLL_RECORDS
            )
        except KafkaError as exc:
            self._fail(f"poll failed: {exc}")
            return []
        # kafka-python's ConsumerRecord has the fields of Record: pass them on uncopied.
        records: list[Record] = []
        positions = self._positions
        for tp, messages in batches.items():
            if messages:
                records.extend(messages)
                positions[tp.partition] = messages[-1].offset + 1
        if records:
            self._last_records = self._clock()
        if records and not self._caught_up:
            self._update_caught_up()
        return records

    def positions(self) -> dict[int, int]:
        """Next offset per partition (every record returned so far is before it)."""
        return dict(self._positions)

    def health(self) -> Health:
        """Connection, restoring progress, lag and last error, as last measured."""
        errors = [e for e in (self._layout_error, self._error, self._letters.error) if e]
        return Health(
            connected=self._connected,
            caught_up=self._caught_up,
            error="; ".join(errors) or None,
            lag=dict(self._lag),
        )

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        """Queue ``record`` for the DLQ topic (see :class:`_DeadLetters`)."""
        self._letters.send(record, reason, detail)

    def flush(self, timeout_s: float) -> bool:
        """Wait for queued dead letters; False if any failed or the wait timed out."""
        return self._letters.flush(timeout_s)

    def close(self) -> None:
        """Close the consumer and producer (bounded waits)."""
        self._letters.close()
        if self._consumer is not None:
            self._consumer.close(autocommit=False, timeout_ms=2000)
            self._consumer = None

    # -- internals -------------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        if self._connected or self._error != message:
            log.warning("kafka unavailable", extra={"error": message})
        self._connected = False
        self._error = message

    def _schedule_retry(self, message: str) -> None:
        self._fail(message)
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, 10.0)

    def _drive_connect(self, now: float, timeout_s: float) -> None:
        """Advance the connection: start an attempt, or wait up to ``timeout_s`` for it.

        kafka-python's bootstrap and metadata calls can wait without bound while no broker
        answers, so an attempt runs on its own daemon thread; the loop only waits for it in
        slices and keeps publishing its status meanwhile.
        """
        if self._connect_thread is None:
            if now < self._retry_at:
                time.sleep(max(0.0, min(timeout_s, self._retry_at - now)))
                return
            self._connect_done.clear()
            self._connect_error = None
            self._connect_started = now
            self._connect_started_wall = time.time()
            self._connect_thread = threading.Thread(
                target=self._connect_blocking, name="kafka-connect", daemon=True
            )
            self._connect_thread.start()
        if not self._connect_done.wait(timeout_s):
            if self._clock() - self._connect_started > 2.0:
                since = time.strftime("%H:%M:%SZ", time.gmtime(self._connect_started_wall))
                self._fail(f"no answer from Kafka at {','.join(self._servers)} since {since}")
            return
        self._connect_thread = None
        if self._connect_error is not None:
            self._schedule_retry(self._connect_error)
            return
        self._lag = {p: max(0, self._targets[p] - self._positions[p]) for p in self._targets}
        self._ready = self._connected = True
        self._error = None
        self._backoff = 0.5
        self._next_partitions = self._clock() + _PARTITIONS_EVERY_S
        self._update_caught_up()
        log.info(
            "kafka source assigned",
            extra={
                "topic": self._topic,
                "positions": self._positions,
                "end_offsets": self._targets,
            },
        )

    def _connect_blocking(self) -> None:
        """One connection attempt (on the connect thread): consumer, partitions, positions,
        end offsets. Sets ``_connect_error`` on failure; always sets ``_connect_done``."""
        try:
            if self._consumer is None:
                self._consumer = KafkaConsumer(
                    bootstrap_servers=self._servers,
                    client_id="cache-daemon",
                    group_id=None,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    allow_auto_create_topics=False,
                    metadata_max_age_ms=5000,
                    request_timeout_ms=_REQUEST_TIMEOUT_MS + 1000,
                    fetch_max_wait_ms=200,
                    max_partition_fetch_bytes=4 * 1024 * 1024,
                    max_poll_records=_MAX_POLL_RECORDS,
                    reconnect_backoff_max_ms=2000,
                    api_version=_API_VERSION,
                    metrics_enabled=False,
                )
            self._consumer.bootstrap()
            partitions = sorted(self._consumer.partitions_for_topic(self._topic))
            if not partitions:
                self._connect_error = f"topic {self._topic!r} does not exist (yet)"
                return
            self._connect_error = self._layout_problem(partitions)
            if self._connect_error is not None:
                return
            partitions = self._mine(partitions)
            self._assign(partitions, by_time=self._wanted is None)
            tps = [TopicPartition(self._topic, p) for p in partitions]
            ends = self._consumer.end_offsets(tps, timeout_ms=_REQUEST_TIMEOUT_MS)
            self._targets = {tp.partition: end for tp, end in ends.items()}
        except KafkaError as exc:
            self._connect_error = f"cannot reach Kafka at {','.join(self._servers)}: {exc}"
        except Exception as exc:
            log.exception("unexpected error while connecting to Kafka")
            self._connect_error = f"connecting to Kafka failed: {type(exc).__name__}: {exc}"
        finally:
            self._connect_done.set()

    def _assign(self, partitions: list[int], *, by_time: bool) -> None:
        """Assign ``partitions`` and seek each one to a known numeric position.

        A recorded position outside the partition's current range (retention deleted the
        records, or the topic was recreated) is logged and replaced by the first offset.
        """
        consumer = self._consumer
        tps = {p: TopicPartition(self._topic, p) for p in partitions}
        gone = sorted(set(self._positions) - set(partitions))
        if gone:
            log.warning("recorded partitions no longer exist", extra={"partitions": gone})
        positions = {p: o for p, o in self._positions.items() if p in tps}
        beginnings = consumer.beginning_offsets(list(tps.values()), timeout_ms=_REQUEST_TIMEOUT_MS)
        ends = consumer.end_offsets(list(tps.values()), timeout_ms=_REQUEST_TIMEOUT_MS)
        for p, tp in tps.items():
            if p in positions and not beginnings[tp] <= positions[p] <= ends[tp]:
                log.warning(
                    "recorded offset out of range; reading the partition from its start",
                    extra={
                        "partition": p,
                        "offset": positions[p],
                        "range": [beginnings[tp], ends[tp]],
                    },
                )
                positions[p] = beginnings[tp]
        unknown = [tps[p] for p in partitions if p not in positions]
        if unknown:
            chosen = {tp.partition: beginnings[tp] for tp in unknown}
            if by_time and self._seek_back_ms is not None:
                chosen.update(self._offsets_by_time(unknown, ends))
            log.info("start offsets chosen", extra={"offsets": chosen, "by_time": by_time})
            positions.update(chosen)
        consumer.assign(list(tps.values()))
        for p, tp in tps.items():
            consumer.seek(tp, positions[p])
        self._positions = positions

    def _offsets_by_time(self, tps: list[Any], ends: Mapping[Any, int]) -> dict[int, int]:
        """First offsets at or after now - window duration (a fresh start skips what the
        window would drop anyway)."""
        assert self._seek_back_ms is not None
        since = max(0, int(time.time() * 1000) - self._seek_back_ms)
        found = self._consumer.offsets_for_times(
            {tp: since for tp in tps}, timeout_ms=_REQUEST_TIMEOUT_MS
        )
        return {
            tp.partition: found[tp].offset if found.get(tp) is not None else ends[tp] for tp in tps
        }

    def _mine(self, partitions: list[int]) -> list[int]:
        """The partitions of ``partitions`` this daemon reads (all without KAFKA_PARTITIONS)."""
        owned = self._owned
        return partitions if owned is None else [p for p in partitions if p in owned]

    def _layout_problem(self, partitions: list[int]) -> str | None:
        """Why the topic's partitions (``partitions``) do not fit KAFKA_PARTITIONS or
        KAFKA_PARTITION_COUNT, else None."""
        has = f"topic {self._topic!r} has {len(partitions)} ({format_partitions(partitions)})"
        count = self._partition_count
        if count is not None and len(partitions) != count:
            return (
                f"KAFKA_PARTITION_COUNT is {count} but {has}: series would be routed to the "
                "wrong shards"
            )
        missing = sorted(self._owned - set(partitions)) if self._owned is not None else []
        if missing:
            return f"KAFKA_PARTITIONS names {format_partitions(missing)}, which {has} lacks"
        return None

    def _check_partitions(self) -> None:
        try:
            partitions = sorted(self._consumer.partitions_for_topic(self._topic))
        except KafkaError as exc:
            self._fail(f"partition check failed: {exc}")
            return
        problem = self._layout_problem(partitions)
        if problem != self._layout_error:
            if problem is not None:
                log.error("topic partitions do not fit the configuration", extra={"error": problem})
            self._layout_error = problem
        partitions = self._mine(partitions)
        new = [p for p in partitions if p not in self._positions]
        if not new:
            return
        log.info("new partitions", extra={"topic": self._topic, "partitions": new})
        try:
            # New partitions of a running stream are read from their beginning.
            self._assign(partitions, by_time=False)
        except KafkaError as exc:
            self._fail(f"assigning new partitions failed: {exc}")

    def _measure_lag(self) -> None:
        """Lag per partition. While records flow, the broker is evidently reachable and the
        high-water marks that come with every fetch give the lag without a request; after a
        second without records an ``end_offsets`` request (500 ms timeout) both measures the
        lag and detects an outage. (That request blocks the loop, so it is kept off the path
        of a busy stream.)"""
        if self._clock() - self._last_records < _LAG_EVERY_S:
            self._connected, self._error = True, None
            for p, position in self._positions.items():
                high = self._consumer.highwater(TopicPartition(self._topic, p))
                if high is not None:
                    self._lag[p] = max(0, high - position)
            return
        tps = [TopicPartition(self._topic, p) for p in self._positions]
        try:
            ends = self._consumer.end_offsets(tps, timeout_ms=500)
        except KafkaError as exc:
            self._fail(f"cannot reach Kafka at {','.join(self._servers)}: {exc}")
            return
        if not self._connected:
            log.info("kafka reachable again")
        self._connected = True
        self._error = None
        self._lag = {
            tp.partition: max(0, end - self._positions[tp.partition]) for tp, end in ends.items()
        }
        if not self._caught_up:
            self._update_caught_up()

    def _update_caught_up(self) -> None:
        positions = self._positions
        if all(positions.get(p, 0) >= end for p, end in self._targets.items()):
            self._caught_up = True
            log.info("caught up with the end offsets seen at start", extra={"offsets": positions})


class _DeadLetters:
    """The DLQ producer: created on the first dead letter; sends are asynchronous.

    Each dead letter carries the original key and value and the headers ``reason``,
    ``detail``, ``source_topic``, ``source_partition`` and ``source_offset``. ``error`` holds
    the last failure until a later flush succeeds.
    """

    def __init__(self, servers: list[str], *, topic: str, dlq_topic: str) -> None:
        self._servers = servers
        self._topic = topic
        self._dlq_topic = dlq_topic
        self._producer: Any = None
        self._pending: list[Any] = []
        self.error: str | None = None

    def send(self, record: Record, reason: str, detail: str) -> None:
        """Queue one dead letter (blocks at most 2 s when the broker is unreachable)."""
        headers = [
            ("reason", reason.encode()),
            ("detail", detail[:500].encode("utf-8", errors="replace")),
            ("source_topic", self._topic.encode()),
            ("source_partition", str(record.partition).encode()),
            ("source_offset", str(record.offset).encode()),
        ]
        try:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self._servers,
                    client_id="cache-daemon-dlq",
                    acks="all",
                    linger_ms=20,
                    max_block_ms=2000,
                    request_timeout_ms=_REQUEST_TIMEOUT_MS,
                    reconnect_backoff_max_ms=2000,
                    api_version=_API_VERSION,
                    metrics_enabled=False,
                )
            future = self._producer.send(
                self._dlq_topic, value=record.value or b"", key=record.key, headers=headers
            )
        except KafkaError as exc:
            log.error(
                "dead letter not sent",
                extra={"partition": record.partition, "offset": record.offset, "error": str(exc)},
            )
            self.error = f"dead-letter topic {self._dlq_topic}: {exc}"
            return
        self._pending.append(future)

    def flush(self, timeout_s: float) -> bool:
        """Wait for the queued dead letters; False if any failed or the wait timed out."""
        if not self._pending:
            return self.error is None
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            self.error = f"dead letters not confirmed by {self._dlq_topic}: {exc}"
            log.error(
                "dead letters not confirmed", extra={"count": len(pending), "error": str(exc)}
            )
            return False
        failed = [f for f in pending if f.failed()]
        if failed:
            self.error = f"dead letters to {self._dlq_topic} failed: {failed[0].exception}"
            log.error("dead letters failed", extra={"count": len(failed), "error": self.error})
            return False
        self.error = None
        return True

    def close(self) -> None:
        """Close the producer (bounded wait)."""
        if self._producer is not None:
            self._producer.close(timeout=2)
            self._producer = None
