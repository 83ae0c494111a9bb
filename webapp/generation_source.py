"""The newest generation a worker can serve, from its ``shm.Reader``.

A refused generation file (corrupt, unsafe, wrong schema, never announced) is skipped by the
reader and named by :meth:`GenerationSource.skipped_files`. If the directory itself is refused
(unsafe permissions, unreadable), the last good generation this process held is served, and
the error is logged once and given by :meth:`GenerationSource.no_data_reason`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pyarrow as pa

from shm import Reader, ShmError, Snapshot

__all__ = ["GenerationSource", "window_schema_problem"]

log = logging.getLogger(__name__)

_TIME_TYPE = pa.timestamp("ns", tz="UTC")


def window_schema_problem(schema: pa.Schema) -> str | None:
    """Why a published table cannot be a window (the reader skips such a generation)."""
    index = schema.get_field_index("time")
    if index < 0:
        return f"no 'time' column (columns {schema.names})"
    if schema.field(index).type != _TIME_TYPE:
        return f"column 'time' is {schema.field(index).type}, not {_TIME_TYPE}"
    return None


class GenerationSource:
    """One process's reader of the shm directory. Thread-safe: the last good generation and
    the last read error change together under one lock."""

    def __init__(self, directory: Path) -> None:
        self._reader = Reader(directory, check_schema=window_schema_problem)
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        self._read_error: str | None = None

    def current(self) -> Snapshot | None:
        """The newest generation (the last good one if the directory is refused); None before
        the first publication."""
        try:
            snapshot = self._reader.current()
        except (ShmError, OSError) as exc:
            error = str(exc)
            with self._lock:
                first = error != self._read_error
                self._read_error = error
                last = self._last
            if first:
                log.error("cannot read the window", extra={"error": error})
            return last
        with self._lock:
            self._read_error = None
            if snapshot is not None:
                self._last = snapshot
        return snapshot

    def recheck(self) -> None:
        """The directory was removed or replaced: the next read looks at it afresh."""
        self._reader.recheck()

    def no_data_reason(self) -> str:
        """Why :meth:`current` returned None."""
        skipped = self.skipped_files()
        error = self._read_error
        if error is None and skipped:
            return "no usable generation; skipped " + "; ".join(skipped)
        return error or "nothing has been published yet"

    def skipped_files(self) -> tuple[str, ...]:
        """Files in the shm directory the reader passed over at its last look, with reasons."""
        return self._reader.skipped

    def after_fork(self) -> None:
        """Replace the lock made in a preloading master with one of this process."""
        self._lock = threading.Lock()
