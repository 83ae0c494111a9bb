"""The daemon's main loop: poll the source, apply events, publish coalesced generations.

One thread does everything that touches the window and the publisher, so a generation's
table, offsets and counters always describe the same instant: every record before the
recorded offsets is in the table (or was dead-lettered / dropped and counted), none after.

Each record's key names its series (:func:`contract.series.series_id_of_key`; no key: the
default series), its value is decoded (:mod:`cache_daemon.decode`) and applied to that
series' window (:class:`~cache_daemon.series_windows.SeriesWindows`).

Loop contract:

* A poison record (a key that cannot name a series, a value that does not decode, a new
  series beyond ``MAX_SERIES``) is dead-lettered with its reason, counted, and skipped; an
  unexpected error while handling one record is logged and dead-lettered as ``internal``.
  Input never stops it.
* Publication: on the leading edge (a change after a quiet interval is published in the same
  step, and so are up to ``PUBLISH_BURST - 1`` more that follow it sooner), at most once per
  ``PUBLISH_INTERVAL_MS`` on average (a sustained burst is coalesced) and, when a
  publication takes longer than that, at most half of the time (the next waits as long as it
  took), and only when what a
  reader would see changed (window content, restoring/live, model); offsets and counters that
  moved without a content change are checkpointed at most once a second. A failed
  publication (ENOSPC...) is counted, reported as ``degraded`` and retried with backoff; the
  last good generation stays.
* A live stream that trickles (fewer than 500 records per poll) is not polled for every record
  while changes already wait for the next publication slot: the loop pauses until the slot and
  drains what accumulated (kafka-python's per-poll cost made 1,000 events/s use ~40 % of a
  core; ~10 % this way, same latency).
* The status file is rewritten every 250 ms and at once when the state changes.
* :meth:`Daemon.run` returns when ``stop`` is set, after one last publication of pending
  changes (so SIGTERM loses nothing that was read).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from cache_daemon.decode import Decoder
from cache_daemon.errors import DecodeError
from cache_daemon.model_watch import ModelWatcher
from cache_daemon.publication import Coalescer, ModelInfo, WindowFacts, build_metadata
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.sources import Health, Record, Source
from cache_daemon.status import Liveness, StatusFile
from cache_daemon.window import Outcome
from cache_daemon.writer import PublishLayout, WindowWriter
from contract.metadata import Counters
from contract.model_files import prune_model_files
from contract.series import SeriesIdError, series_id_of_key
from shm import SERIES_PER_SEGMENT, Publisher, PublishError

__all__ = ["Daemon"]

log = logging.getLogger(__name__)
_STATUS_EVERY_NS = 250_000_000
_MAX_WAIT_S = 0.25
_DLQ_FLUSH_S = 5.0
_DRAIN_S = 0.005
_TRICKLE = 500


class Daemon:
    """Owns the windows of every series, the publisher and the status file; driven by
    :meth:`run`.

    ``initial_source`` is the ``source`` metadata of the generation published before the
    stream starts (``"snapshot"`` for an S3 snapshot, else the source's kind). ``layout``,
    ``series_per_segment``: how generations are written (:mod:`cache_daemon.writer`).
    """

    def __init__(
        self,
        *,
        source: Source,
        publisher: Publisher,
        windows: SeriesWindows,
        topic: str,
        shm_dir: Path,
        publish_interval_ms: int,
        publish_burst: int = 1,
        gap_policy: str = "keep",
        layout: PublishLayout = "auto",
        series_per_segment: int = SERIES_PER_SEGMENT,
        counters: Counters | None = None,
        model: ModelInfo | None = None,
        watcher: ModelWatcher | None = None,
        status: StatusFile | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self.source = source
        self.publisher = publisher
        self.windows = windows
        self.topic = topic
        self.shm_dir = shm_dir
        self.gap_policy = gap_policy
        self.writer = WindowWriter(
            publisher,
            windows,
            layout=layout,
            gap_policy=gap_policy,
            series_per_segment=series_per_segment,
        )
        self.counters = counters or Counters()
        self.model = model
        self.watcher = watcher
        self.decoder = Decoder(windows.columns)
        self.status = status or StatusFile(shm_dir)
        self.liveness = liveness or Liveness()
        self.state = "starting"
        self.last_error: str | None = None
        self.last_publish_ns: int | None = None
        self._coalescer = Coalescer(publish_interval_ms * 1_000_000, burst=publish_burst)
        self._caught_up = False
        self._trickle = False
        self._publish_failures = 0
        self._next_status_ns = 0
        self._written_state = ""
        self._models_in_use: list[str] = [model.file] if model else []

    # -- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, publish_first: str | None = None) -> None:
        """Loop until ``stop`` is set. ``publish_first``: publish the current window at once
        with this ``source`` label (a bootstrap snapshot readers have not seen yet)."""
        self._write_status(self.source.health())
        if publish_first is not None and self.windows.series_count:
            self._publish(label=publish_first, data_state="restoring")
        try:
            while not stop.is_set():
                self.step()
        finally:
            self._shutdown()

    def step(self) -> None:
        """One iteration: poll, apply, maybe publish, maybe write the status file."""
        self.liveness.beat()
        timeout = self._poll_timeout()
        if self._trickle and self._caught_up and timeout > _DRAIN_S and self._pending():
            # Live, few records per poll, and changes already wait for the next publication
            # slot: let records accumulate instead of waking up (and paying kafka-python's
            # per-poll overhead) for each one; at the slot one poll drains them all.
            time.sleep(timeout - _DRAIN_S)
            # The first poll returns what was fetched before the pause and sends a new fetch;
            # the second collects what reached the broker during the pause.
            records = self.source.poll(0.0)
            records += self.source.poll(_DRAIN_S)
        else:
            records = self.source.poll(timeout)
        self._trickle = 0 < len(records) < _TRICKLE
        if records:
            self._ingest(records)
        if self.watcher is not None:
            newest = self.watcher.take()
            if newest is not None and (self.model is None or newest.sha256 != self.model.sha256):
                log.info("new model to publish", extra={"model_version": newest.version})
                self.model = newest
        health = self.source.health()
        self._caught_up = self._caught_up or health.caught_up
        self._maybe_publish()
        self.state = self._state(health)
        now = time.monotonic_ns()
        if now >= self._next_status_ns or self.state != self._written_state:
            self._next_status_ns = now + _STATUS_EVERY_NS
            self._write_status(health)

    def _ingest(self, records: list[Record]) -> None:
        decode, apply = self.decoder.decode, self.windows.apply
        default = self.windows.default_series
        counters = self.counters
        events = dropped = 0
        for record in records:
            try:
                key = record.key
                series_id = series_id_of_key(key, default) if key else default
                event = decode(record.value)
                outcome = apply(series_id, event.time_ns, event.values)
            except (DecodeError, SeriesIdError) as exc:
                self._dead_letter(record, exc.reason, exc.detail)
                continue
            except Exception as exc:
                log.exception(
                    "unexpected error on a record",
                    extra={"partition": record.partition, "offset": record.offset},
                )
                self._dead_letter(record, "internal", f"{type(exc).__name__}: {exc}")
                continue
            events += 1
            if outcome is Outcome.DROPPED_LATE:
                dropped += 1
        counters.events += events
        counters.dropped_late += dropped
        counters.series_expired += self.windows.pop_expired()

    def _dead_letter(self, record: Record, reason: str, detail: str) -> None:
        letters = self.counters.dead_letters
        letters[reason] = letters.get(reason, 0) + 1
        log.debug(
            "dead letter",
            extra={
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
                "detail": detail,
            },
        )
        self.source.dead_letter(record, reason, detail)

    # -- publication ------------------------------------------------------------------------

    def _data_state(self) -> str:
        return "live" if self._caught_up else "restoring"

    def _keys(self) -> tuple[object, object]:
        content = (self.windows.version, self._data_state(), self.model)
        c = self.counters
        progress = (
            tuple(sorted(self.source.positions().items())),
            c.events,
            c.dropped_late,
            tuple(sorted(c.dead_letters.items())),
        )
        return content, progress

    def _pending(self) -> bool:
        """Changes exist that the next publication slot will carry."""
        return self._coalescer.wait_ns(time.monotonic_ns(), *self._keys()) is not None

    def _poll_timeout(self) -> float:
        if not self.windows.series_count:
            return _MAX_WAIT_S
        wait_ns = self._coalescer.wait_ns(time.monotonic_ns(), *self._keys())
        if wait_ns is None:
            return _MAX_WAIT_S
        return min(_MAX_WAIT_S, wait_ns / 1e9)

    def _maybe_publish(self) -> None:
        if not self.windows.series_count:
            return
        if self._coalescer.due(time.monotonic_ns(), *self._keys()):
            self._publish(label=self.source.kind, data_state=self._data_state())

    def _publish(self, *, label: str, data_state: str) -> bool:
        # Failures show in the source's health (last_error); publishing goes on regardless.
        self.source.flush(_DLQ_FLUSH_S)
        captured_ns = time.monotonic_ns()
        keys = self._keys()
        series, offsets = self.windows.series_count, self.source.positions()

        def describe(facts: WindowFacts) -> dict[str, str]:
            return build_metadata(
                facts,
                series=series,
                offsets=offsets,
                topic=self.topic,
                source=label,
                state=data_state,
                model=self.model,
                counters=self.counters,
            )

        try:
            generation, rows = self.writer.write(describe)
        except PublishError as exc:
            self.counters.publish_errors += 1
            self._publish_failures += 1
            backoff_ns = min(2**self._publish_failures, 50) * 100_000_000
            self._coalescer.failed(time.monotonic_ns(), backoff_ns)
            self.last_error = str(exc)
            self.state = "degraded"
            log.error("publish failed", extra={"error": str(exc)})
            return False
        self._coalescer.published(captured_ns, *keys, took_ns=time.monotonic_ns() - captured_ns)
        self.windows.clear_changed()
        self.last_publish_ns = time.time_ns()
        if self._publish_failures:
            self._publish_failures = 0
            self.last_error = None
        self._track_model_files()
        log.debug("published", extra={"generation": generation, "rows": rows})
        return True

    def _track_model_files(self) -> None:
        if self.model is None:
            return
        if not self._models_in_use or self._models_in_use[-1] != self.model.file:
            self._models_in_use = [*self._models_in_use, self.model.file][-2:]
            prune_model_files(self.shm_dir, set(self._models_in_use))

    # -- status -----------------------------------------------------------------------------

    def _state(self, health: Health) -> str:
        if self._publish_failures or (not health.connected and health.error):
            return "degraded"
        if not health.connected:
            return "starting"
        return self._data_state()

    def _write_status(self, health: Health) -> None:
        errors = [e for e in (health.error, self.last_error) if e]
        if self.watcher is not None and self.watcher.error:
            errors.append(self.watcher.error)
        self._written_state = self.state
        self.status.write(
            state=self.state,
            source=self.source.kind,
            generation=self.publisher.generation,
            last_publish_ns=self.last_publish_ns,
            lag=health.lag,
            counters=self.counters,
            last_error="; ".join(errors) or None,
        )

    def _shutdown(self) -> None:
        self.state = "stopping"
        health = self.source.health()
        self._write_status(health)
        try:
            if self.windows.series_count and self._coalescer.wait_ns(0, *self._keys()) is not None:
                self._publish(label=self.source.kind, data_state=self._data_state())
        finally:
            if self.watcher is not None:
                self.watcher.stop()
            self.source.close()
            self._write_status(health)
            log.info("stopped", extra={"generation": self.publisher.generation})
