"""What goes into each generation besides the table: counters, metadata, and when to publish.

Metadata keys (all values are strings; the contract webapp and tests rely on):
``offsets`` (JSON ``{"<partition>": next offset}``, ``{}`` for replay), ``topic``, ``source``
(``kafka`` | ``replay`` | ``snapshot``), ``state`` (``restoring`` | ``live``), ``rows``,
``time_min``, ``time_max`` (ISO-8601 UTC, empty when the window is empty),
``schema_fingerprint``, ``model_version``, ``model_sha256``, ``model_file`` (empty without a
model), ``window_checksum`` (:func:`shm.table_checksum`), and ``counters`` (JSON of
:class:`Counters`, restored at restart so nothing is counted twice).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from shm import table_checksum

__all__ = ["Coalescer", "Counters", "ModelInfo", "build_metadata", "iso_utc", "schema_fingerprint"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A verified model artifact installed in the shm directory as ``file``."""

    version: str
    sha256: str
    file: str


@dataclass(slots=True)
class Counters:
    """Totals since the stream's first record (carried across restarts in the metadata).

    ``events``: valid records applied (including duplicates and late drops); ``dead_letters``:
    rejected records by reason; ``dropped_late``: valid events older than the window;
    ``publish_errors``: failed publications.
    """

    events: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    dropped_late: int = 0
    publish_errors: int = 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, as in the status file."""
        return {
            "events": self.events,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "dropped_late": self.dropped_late,
            "publish_errors": self.publish_errors,
        }

    @classmethod
    def from_json(cls, text: str) -> Counters:
        """Parse :meth:`as_dict` output; anything malformed gives zeroed counters."""
        try:
            raw = json.loads(text)
            letters = raw.get("dead_letters", {})
            return cls(
                events=int(raw.get("events", 0)),
                dead_letters={str(k): int(v) for k, v in letters.items()},
                dropped_late=int(raw.get("dropped_late", 0)),
                publish_errors=int(raw.get("publish_errors", 0)),
            )
        except (ValueError, TypeError, AttributeError):
            return cls()


def iso_utc(time_ns: int | None) -> str:
    """``2000-06-05T00:00:00+00:00`` style (microseconds when non-zero); ``""`` for None."""
    if time_ns is None:
        return ""
    return (_EPOCH + timedelta(microseconds=time_ns // 1000)).isoformat()


def schema_fingerprint(schema: pa.Schema) -> str:
    """Short stable hash of column names and types (metadata ignored)."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def build_metadata(
    table: pa.Table,
    *,
    offsets: Mapping[int, int],
    topic: str,
    source: str,
    state: str,
    model: ModelInfo | None,
    counters: Counters,
) -> dict[str, str]:
    """The generation metadata for ``table`` (see the module docstring for the keys)."""
    times = table.column("time")
    has_rows = table.num_rows > 0
    return {
        "offsets": json.dumps({str(p): o for p, o in sorted(offsets.items())}),
        "topic": topic,
        "source": source,
        "state": state,
        "rows": str(table.num_rows),
        "time_min": iso_utc(times[0].value) if has_rows else "",
        "time_max": iso_utc(times[-1].value) if has_rows else "",
        "schema_fingerprint": schema_fingerprint(table.schema),
        "model_version": model.version if model else "",
        "model_sha256": model.sha256 if model else "",
        "model_file": model.file if model else "",
        "window_checksum": table_checksum(table),
        "counters": json.dumps(counters.as_dict(), separators=(",", ":")),
    }


class Coalescer:
    """Decides when to publish: at most once per ``interval_ns``, and only on a change.

    ``content`` is anything comparable that changes when a reader would see something new
    (window version, state, model); ``progress`` changes when only offsets/counters moved
    (duplicates, dead letters): that is published at most once per ``checkpoint_ns`` so that a
    restart does not re-read a long run of records that changed nothing.
    """

    def __init__(self, interval_ns: int, *, checkpoint_ns: int = 1_000_000_000) -> None:
        self.interval_ns = interval_ns
        self.checkpoint_ns = checkpoint_ns
        self._last_ns: int | None = None
        self._content: object = None
        self._progress: object = None
        self._not_before_ns = 0

    def due(self, now_ns: int, content: object, progress: object) -> bool:
        """True when a publication should happen now."""
        if now_ns < self._not_before_ns:
            return False
        if self._last_ns is None:
            return True
        elapsed = now_ns - self._last_ns
        if content != self._content:
            return elapsed >= self.interval_ns
        return progress != self._progress and elapsed >= self.checkpoint_ns

    def wait_ns(self, now_ns: int, content: object, progress: object) -> int | None:
        """Nanoseconds until :meth:`due` could turn true for these values; None if never."""
        if self._last_ns is None:
            return max(0, self._not_before_ns - now_ns)
        if content != self._content:
            target = self._last_ns + self.interval_ns
        elif progress != self._progress:
            target = self._last_ns + self.checkpoint_ns
        else:
            return None
        return max(0, target - now_ns, self._not_before_ns - now_ns)

    def published(self, now_ns: int, content: object, progress: object) -> None:
        """Record a successful publication."""
        self._last_ns = now_ns
        self._content = content
        self._progress = progress
        self._not_before_ns = 0

    def failed(self, now_ns: int, backoff_ns: int) -> None:
        """Record a failed publication: no new attempt before ``backoff_ns`` from now."""
        self._not_before_ns = now_ns + backoff_ns
