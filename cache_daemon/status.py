"""Writing the daemon status file (:class:`contract.status.DaemonStatus`) while the loop lives.

The daemon's main loop rewrites it every 250 ms and on every state change; a
:class:`Heartbeat` thread refreshes it in between while the loop is alive, so the heartbeat is
never older than 0.5 s unless the loop has been stuck for 30 s. ``started_ns`` is the process
start (``/metrics`` exports it for the restart alert).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from contract.metadata import Counters
from contract.status import (
    STATUS_FILE,
    DaemonStatus,
    process_start_ticks,
    read_status,
    write_status,
)

__all__ = ["STATUS_FILE", "Heartbeat", "Liveness", "StatusFile", "read_status"]

log = logging.getLogger(__name__)


class StatusFile:
    """Writes the status file; a failed write is logged (at most once per minute), not raised.

    Thread-safe: the main loop calls :meth:`write`, a :class:`Heartbeat` thread calls
    :meth:`refresh` to keep the heartbeat fresh while the loop is inside a slow call.
    ``started_ns`` (default: now) is written as the daemon's start time; the service creates
    its one writer first thing at process start.
    """

    def __init__(self, directory: Path, *, started_ns: int | None = None) -> None:
        self.directory = directory
        self.path = directory / STATUS_FILE
        self.started_ns = time.time_ns() if started_ns is None else started_ns
        self.start_ticks = process_start_ticks(os.getpid())
        self._lock = threading.Lock()
        self._status: DaemonStatus | None = None
        self._written_at = 0.0
        self._last_failure_log = 0.0

    def write(
        self,
        *,
        state: str,
        source: str,
        generation: int,
        last_publish_ns: int | None,
        lag: Mapping[int, int],
        counters: Counters,
        last_error: str | None,
    ) -> None:
        """Replace the file with the given values and a fresh heartbeat."""
        status = DaemonStatus(
            pid=os.getpid(),
            state=state,
            source=source,
            started_ns=self.started_ns,
            start_ticks=self.start_ticks,
            last_publish_ns=last_publish_ns,
            generation=generation,
            lag={str(p): n for p, n in sorted(lag.items())},
            counters=replace(counters, dead_letters=dict(counters.dead_letters)),
            last_error=last_error,
        )
        with self._lock:
            self._status = status
            self._write_locked()

    def refresh(self, older_than_s: float) -> None:
        """Rewrite the last values with a fresh heartbeat if the file is older than that."""
        with self._lock:
            if self._status is not None and time.monotonic() - self._written_at >= older_than_s:
                self._write_locked()

    def _write_locked(self) -> None:
        assert self._status is not None
        try:
            write_status(self.directory, replace(self._status, heartbeat_ns=time.time_ns()))
        except OSError as exc:
            now = time.monotonic()
            if now - self._last_failure_log > 60:
                self._last_failure_log = now
                log.error("cannot write the status file", extra={"error": str(exc)})
            return
        self._written_at = time.monotonic()


class Liveness:
    """When the main loop last made progress; it counts as alive for ``stall_s`` after that."""

    def __init__(self, stall_s: float = 30.0) -> None:
        self.stall_s = stall_s
        self._at = time.monotonic()

    def beat(self) -> None:
        """Called by the main loop on every iteration (and between start-up steps)."""
        self._at = time.monotonic()

    def alive(self) -> bool:
        """True while the last beat is younger than ``stall_s``."""
        return time.monotonic() - self._at < self.stall_s


class Heartbeat:
    """Keeps the status file's heartbeat at most ``max_age_s`` old while the loop is alive.

    A loop blocked in a bounded call (a broker request timing out, a slow flush) still reports
    a heartbeat; a loop stuck for longer than ``Liveness.stall_s`` stops it, so a liveness
    probe restarts the process.
    """

    def __init__(self, status: StatusFile, liveness: Liveness, *, max_age_s: float = 0.5) -> None:
        self._status = status
        self._liveness = liveness
        self._max_age_s = max_age_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-heartbeat", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (bounded wait)."""
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.wait(self._max_age_s / 2):
            if self._liveness.alive():
                self._status.refresh(self._max_age_s)
