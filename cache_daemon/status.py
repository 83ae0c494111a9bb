"""The daemon status file, ``<SHM_DIR>/daemon-status.json``, for probes and the webapp.

Rewritten atomically (temp file + rename, mode 0640) by the daemon's main loop at least once a
second. Content (one JSON object)::

    {"pid": int, "state": "starting"|"restoring"|"live"|"degraded"|"stopping",
     "source": "kafka"|"replay", "heartbeat_ns": int (time.time_ns()),
     "last_publish_ns": int|null, "generation": int, "lag": {"<partition>": int},
     "counters": {"events", "dead_letters": {"<reason>": n}, "dropped_late", "publish_errors"},
     "last_error": str|null}

A reader decides liveness from ``heartbeat_ns`` (younger than ``MAX_DATA_AGE_MS``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path

from cache_daemon._atomic import write_atomic
from cache_daemon.publication import Counters

__all__ = ["STATUS_FILE", "StatusFile", "read_status"]

STATUS_FILE = "daemon-status.json"
log = logging.getLogger(__name__)


class StatusFile:
    """Writes the status file; a failed write is logged (at most once per minute), not raised."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / STATUS_FILE
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
        body = {
            "pid": os.getpid(),
            "state": state,
            "source": source,
            "heartbeat_ns": time.time_ns(),
            "last_publish_ns": last_publish_ns,
            "generation": generation,
            "lag": {str(p): n for p, n in sorted(lag.items())},
            "counters": counters.as_dict(),
            "last_error": last_error,
        }
        try:
            write_atomic(self.path, json.dumps(body, separators=(",", ":")).encode())
        except OSError as exc:
            now = time.monotonic()
            if now - self._last_failure_log > 60:
                self._last_failure_log = now
                log.error("cannot write the status file", extra={"error": str(exc)})


def read_status(directory: Path) -> dict[str, object] | None:
    """The status file's content, or None when absent or unreadable (for probes and tests)."""
    try:
        data = json.loads((directory / STATUS_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
