"""The daemon status file, ``<SHM_DIR>/daemon-status.json``: :class:`DaemonStatus`.

The daemon rewrites it atomically (temp file + rename, mode 0640) at least twice a second
while its loop is alive; ``make run``'s supervisor marks it ``crashed`` when the daemon dies.
Content (one JSON object)::

    {"pid": int, "state": "starting"|"restoring"|"live"|"degraded"|"stopping"|"crashed",
     "source": "kafka"|"replay", "started_ns": int (time.time_ns() at process start),
     "start_ticks": int|null (the process's start in clock ticks after boot, /proc),
     "heartbeat_ns": int (time.time_ns()),
     "last_publish_ns": int|null, "generation": int, "lag": {"<partition>": int},
     "counters": {"events", "dead_letters": {"<reason>": n}, "dropped_late", "publish_errors",
                  "series_expired"},
     "last_error": str|null}

A reader decides liveness from ``heartbeat_ns`` (younger than ``MAX_DATA_AGE_MS``); a change of
``started_ns`` means the daemon was restarted. ``start_ticks`` identifies the writing process
exactly, whatever the wall clock does: a probe in the daemon's PID namespace compares it with
:func:`process_start_ticks` of ``pid``. Standard library only: the exec health probe
imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from contract._atomic import write_atomic
from contract.metadata import Counters

__all__ = ["STATUS_FILE", "DaemonStatus", "process_start_ticks", "read_status", "write_status"]

STATUS_FILE = "daemon-status.json"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """One status file's content. Fields a reader cannot use read as ``None`` (or empty)."""

    state: str | None = None
    source: str | None = None
    pid: int | None = None
    started_ns: int | None = None
    start_ticks: int | None = None
    heartbeat_ns: int | None = None
    last_publish_ns: int | None = None
    generation: int | None = None
    lag: dict[str, int] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    last_error: str | None = None

    def to_json(self) -> bytes:
        """The file's bytes."""
        body = asdict(self)
        body["counters"] = self.counters.as_dict()
        return json.dumps(body, separators=(",", ":")).encode()

    def with_state(self, state: str) -> DaemonStatus:
        """A copy in another state (everything else, the heartbeat too, unchanged)."""
        return replace(self, state=state)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> DaemonStatus:
        """Read a parsed status object leniently: ill-typed fields read as absent."""
        state, source, error = raw.get("state"), raw.get("source"), raw.get("last_error")
        lag = raw.get("lag")
        return cls(
            state=state if isinstance(state, str) else None,
            source=source if isinstance(source, str) else None,
            pid=_int(raw.get("pid")),
            started_ns=_int(raw.get("started_ns")),
            start_ticks=_int(raw.get("start_ticks")),
            heartbeat_ns=_int(raw.get("heartbeat_ns")),
            last_publish_ns=_int(raw.get("last_publish_ns")),
            generation=_int(raw.get("generation")),
            lag={
                str(k): v
                for k, v in (lag.items() if isinstance(lag, dict) else ())
                if _int(v) is not None
            },
            counters=Counters.from_obj(raw.get("counters")),
            last_error=error if isinstance(error, str) else None,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DaemonStatus | None:
        """Parse a status file's bytes; None when they are not a JSON object."""
        try:
            raw = json.loads(data)
        except ValueError:
            return None
        return cls.from_mapping(raw) if isinstance(raw, dict) else None


def process_start_ticks(pid: int, proc: Path = Path("/proc")) -> int | None:
    """When process ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat`` field
    22: the kernel's own, unmoved by changes of the wall clock); None when no such process
    is running or ``proc`` cannot tell (not Linux)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
        # Fields after the command's closing ")" start at field 3.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def write_status(directory: Path, status: DaemonStatus) -> None:
    """Replace the status file in ``directory`` atomically (raises ``OSError``)."""
    write_atomic(directory / STATUS_FILE, status.to_json())


def read_status(directory: Path) -> dict[str, object] | None:
    """The status file's raw JSON object, or None when absent or unreadable (probes, tests)."""
    try:
        data = json.loads((directory / STATUS_FILE).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
