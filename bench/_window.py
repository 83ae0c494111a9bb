"""A window published as the cache daemon publishes it, without the daemon.

:class:`LiveWindow` installs the model artifact in the shm directory
(:func:`contract.model_files.install_model_file`), publishes tables through ``shm.Publisher``
with the generation metadata of :class:`contract.metadata.GenerationMeta`, and rewrites the
status file (:class:`contract.status.DaemonStatus`, state ``live``) every ``beat`` seconds, so
the web workers see a fresh, ready window for as long as it is open. With ``tables``, each
beat publishes the next table too: a window that keeps changing under the workers.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from contract.metadata import GenerationMeta, iso_utc, schema_fingerprint
from contract.model_files import install_model_file
from contract.status import DaemonStatus, write_status
from forecasting import load_bytes
from shm import Publisher, table_checksum

__all__ = ["LiveWindow"]


class LiveWindow:
    """Context manager: ``directory`` holds the published window while it is open, and is
    removed when it closes."""

    def __init__(
        self,
        directory: Path,
        artifact: bytes,
        first: pa.Table,
        *,
        tables: Callable[[], pa.Table] | None = None,
        beat: float = 1.0,
    ) -> None:
        self.directory = directory
        self.generation = 0
        self.generations = 0  # published by this object
        self._artifact = artifact
        self._first: pa.Table | None = first
        self._tables = tables
        self._beat = beat
        self._meta = GenerationMeta(offsets={}, topic="bench", source="snapshot", state="live")
        self._started_ns = time.time_ns()
        self._published_ns: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-heartbeat", daemon=True)
        self._publisher: Publisher | None = None
        # The heartbeat thread and the caller both write the status file, through the same
        # per-process temp name: one at a time.
        self._lock = threading.Lock()

    def __enter__(self) -> LiveWindow:
        self.directory.mkdir(mode=0o750, parents=True, exist_ok=True)
        name, sha256 = install_model_file(self.directory, self._artifact)
        version = load_bytes(self._artifact, sha256=sha256).version
        self._meta = replace(
            self._meta, model_version=version, model_sha256=sha256, model_file=name
        )
        self._publisher = Publisher(self.directory)
        assert self._first is not None
        self.publish(self._first)
        self._first = None  # the caller may free the table
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._publisher is not None:
            self._publisher.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def publish(self, table: pa.Table) -> int:
        """Publish ``table`` with the daemon's metadata and a fresh status; its generation.

        Safe to call from any thread while the heartbeat runs."""
        assert self._publisher is not None
        times = table.column("time")
        meta = replace(
            self._meta,
            rows=table.num_rows,
            time_min=iso_utc(times[0].value) if table.num_rows else "",
            time_max=iso_utc(times[-1].value) if table.num_rows else "",
            schema_fingerprint=schema_fingerprint(table.schema),
            window_checksum=table_checksum(table),
        )
        with self._lock:
            self.generation = self._publisher.publish(table, metadata=meta.to_metadata())
            self.generations += 1
            self._published_ns = time.time_ns()
            self._write_status_locked()
            return self.generation

    def file_bytes(self) -> int:
        """Bytes of the published generation files (what the window costs in tmpfs)."""
        return sum(p.stat().st_size for p in self.directory.glob("gen-*.arrow"))

    def _run(self) -> None:
        while not self._stop.wait(self._beat):
            if self._tables is not None:
                self.publish(self._tables())
            else:
                with self._lock:
                    self._write_status_locked()

    def _write_status_locked(self) -> None:
        status = DaemonStatus(
            state="live",
            source="replay",
            pid=os.getpid(),
            started_ns=self._started_ns,
            heartbeat_ns=time.time_ns(),
            last_publish_ns=self._published_ns,
            generation=self.generation,
        )
        write_status(self.directory, status)
