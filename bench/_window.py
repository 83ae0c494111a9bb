"""Our side of ``bench.compare`` without the daemon: a published window and a live heartbeat.

:class:`OursWindow` does what the cache daemon does for a fixed window: it installs the
model artifact in the shm directory, publishes the table with the daemon's metadata through
``shm.Publisher``, and rewrites ``daemon-status.json`` every second with state ``live``, so
the web workers see a fresh, ready window for as long as the benchmark runs.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from bench.compare.series import window_metadata
from shm import Publisher

__all__ = ["OursWindow"]


class OursWindow:
    """Context manager: ``directory`` holds the published window while it is open."""

    def __init__(self, table: pa.Table, directory: Path, model_path: Path) -> None:
        self.directory = directory
        self._table = table
        self._model_path = model_path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="bench-heartbeat", daemon=True)
        self._publisher: Publisher | None = None
        self.generation = 0

    def __enter__(self) -> OursWindow:
        self.directory.mkdir(mode=0o750, parents=True)
        self._publisher = Publisher(self.directory)
        metadata = window_metadata(self._table, self.directory, self._model_path)
        self.generation = self._publisher.publish(self._table, metadata=metadata)
        self._write_status()
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._publisher is not None:
            self._publisher.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def file_bytes(self) -> int:
        """Bytes of the published generation files (what the window costs in tmpfs)."""
        return sum(p.stat().st_size for p in self.directory.glob("gen-*.arrow"))

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            self._write_status()

    def _write_status(self) -> None:
        now = time.time_ns()
        status = {
            "pid": os.getpid(),
            "state": "live",
            "source": "snapshot",
            "heartbeat_ns": now,
            "last_publish_ns": now,
            "generation": self.generation,
            "lag": {},
            "counters": {"events": 0, "dead_letters": {}, "dropped_late": 0, "publish_errors": 0},
            "last_error": None,
        }
        tmp = self.directory / ".daemon-status.tmp"
        tmp.write_text(json.dumps(status))
        tmp.chmod(0o640)
        tmp.replace(self.directory / "daemon-status.json")
