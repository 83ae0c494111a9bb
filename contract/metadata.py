"""The metadata of each published generation: :class:`GenerationMeta` and its :class:`Counters`.

On the wire (the Arrow IPC file's custom metadata) every value is a string:

=====================  ===================================================================
key                    value
=====================  ===================================================================
``offsets``            JSON ``{"<partition>": next offset}``; ``{}`` for replay
``topic``              the Kafka topic the offsets belong to
``source``             ``kafka`` | ``replay`` | ``snapshot``
``state``              ``restoring`` | ``live``
``rows``               number of rows (of every series together)
``series``             number of series (:mod:`contract.series`); ``0`` when not written
``time_min/max``       ISO-8601 UTC of the oldest and newest row; empty when there are none
``schema_fingerprint`` :func:`schema_fingerprint` of the table
``model_version``      the installed model's version; empty without a model
``model_sha256``       its SHA-256; empty without a model
``model_file``         its file name in the shm directory (:mod:`contract.model_files`)
``window_checksum``    :func:`shm.table_checksum` of the table (inline generation); of a
                       segmented one, the :class:`shm.SegmentsChecksum` of its segments
                       (``Snapshot.data_checksum`` recomputes either from the files)
``counters``           JSON of :class:`Counters`, carried across restarts
=====================  ===================================================================

:meth:`GenerationMeta.from_metadata` reads what any publisher wrote, leniently: a missing or
malformed value reads as its empty default, and unreadable offsets as ``None``, so a reader
decides what an incomplete generation means instead of failing on it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = [
    "MODEL_KEYS",
    "Counters",
    "GenerationMeta",
    "format_offsets",
    "iso_ns",
    "iso_utc",
    "parse_offsets",
    "schema_fingerprint",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The keys that name a generation's model (all empty without one).
MODEL_KEYS = ("model_version", "model_sha256", "model_file")


class _Field(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> object: ...


@dataclass(slots=True)
class Counters:
    """Totals since the stream's first record (carried across restarts in the metadata).

    ``events``: valid records applied (including duplicates and late drops); ``dead_letters``:
    rejected records by reason; ``dropped_late``: valid events older than the window;
    ``publish_errors``: failed publications; ``series_expired``: series dropped by the
    series TTL.
    """

    events: int = 0
    dead_letters: dict[str, int] = field(default_factory=dict)
    dropped_late: int = 0
    publish_errors: int = 0
    series_expired: int = 0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form, as in the status file."""
        return {
            "events": self.events,
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "dropped_late": self.dropped_late,
            "publish_errors": self.publish_errors,
            "series_expired": self.series_expired,
        }

    @classmethod
    def from_obj(cls, raw: object) -> Counters:
        """Parse :meth:`as_dict` output; anything malformed gives zeroed counters."""
        try:
            assert isinstance(raw, dict)
            letters = raw.get("dead_letters", {})
            return cls(
                events=int(raw.get("events", 0)),
                dead_letters={str(k): int(v) for k, v in letters.items()},
                dropped_late=int(raw.get("dropped_late", 0)),
                publish_errors=int(raw.get("publish_errors", 0)),
                series_expired=int(raw.get("series_expired", 0)),
            )
        except (AssertionError, ValueError, TypeError, AttributeError):
            return cls()

    @classmethod
    def from_json(cls, text: str | bytes) -> Counters:
        """:meth:`from_obj` of JSON text; malformed text gives zeroed counters."""
        try:
            return cls.from_obj(json.loads(text))
        except ValueError:
            return cls()


def iso_utc(time_ns: int | None) -> str:
    """``2000-06-05T00:00:00+00:00`` style (microseconds when non-zero); ``""`` for None."""
    if time_ns is None:
        return ""
    return (_EPOCH + timedelta(microseconds=time_ns // 1000)).isoformat()


def iso_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of an ISO-8601 time with an offset (what :func:`iso_utc`
    writes; microsecond precision); None for ``""`` or anything else that is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def schema_fingerprint(schema: Iterable[_Field]) -> str:
    """Short stable hash of the column names and types of a ``pyarrow.Schema``."""
    text = ";".join(f"{f.name}:{f.type}" for f in schema)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def format_offsets(offsets: Mapping[int, int] | None) -> str:
    """``{"<partition>": offset}`` JSON, partitions in order (what :func:`parse_offsets` reads)."""
    return json.dumps({str(p): o for p, o in sorted((offsets or {}).items())})


def parse_offsets(raw: str | bytes | None) -> dict[int, int] | None:
    """``{"<partition>": offset}`` JSON as a dict, or None when absent or malformed."""
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
        if not isinstance(parsed, dict):
            return None
        offsets = {int(p): int(o) for p, o in parsed.items()}
    except (ValueError, TypeError):
        return None
    return offsets if all(p >= 0 and o >= 0 for p, o in offsets.items()) else None


def _count(raw: str) -> int:
    """A non-negative decimal count, or 0 when malformed (``isdigit`` alone admits "²")."""
    return int(raw) if raw.isascii() and raw.isdigit() else 0


@dataclass(frozen=True, slots=True)
class GenerationMeta:
    """What a generation says about itself besides its table (see the module docstring)."""

    offsets: dict[int, int] | None = None
    topic: str = ""
    source: str = ""
    state: str = ""
    rows: int = 0
    series: int = 0
    time_min: str = ""
    time_max: str = ""
    schema_fingerprint: str = ""
    model_version: str = ""
    model_sha256: str = ""
    model_file: str = ""
    window_checksum: str = ""
    counters: Counters = field(default_factory=Counters)

    def to_metadata(self) -> dict[str, str]:
        """The string mapping a publisher stores with the table."""
        return {
            "offsets": format_offsets(self.offsets),
            "topic": self.topic,
            "source": self.source,
            "state": self.state,
            "rows": str(self.rows),
            "series": str(self.series),
            "time_min": self.time_min,
            "time_max": self.time_max,
            "schema_fingerprint": self.schema_fingerprint,
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
            "model_file": self.model_file,
            "window_checksum": self.window_checksum,
            "counters": json.dumps(self.counters.as_dict(), separators=(",", ":")),
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> GenerationMeta:
        """Read a generation's metadata leniently (see the module docstring)."""
        get = metadata.get
        return cls(
            offsets=parse_offsets(get("offsets")),
            topic=get("topic", ""),
            source=get("source", ""),
            state=get("state", ""),
            rows=_count(get("rows", "")),
            series=_count(get("series", "")),
            time_min=get("time_min", ""),
            time_max=get("time_max", ""),
            schema_fingerprint=get("schema_fingerprint", ""),
            model_version=get("model_version", ""),
            model_sha256=get("model_sha256", ""),
            model_file=get("model_file", ""),
            window_checksum=get("window_checksum", ""),
            counters=Counters.from_json(get("counters", "")),
        )
