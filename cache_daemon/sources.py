"""The interface between the daemon's loop and where events come from.

A source hands out raw records (bytes, decoded by :mod:`cache_daemon.decode`), tracks the next
offset per partition, and reports its health. Transient faults never raise out of a source:
they show up in :meth:`Source.health` while the source retries on its own.

Implementations: :class:`cache_daemon.replay.ReplaySource` (bundled sample series) and
``cache_daemon.kafka_source.KafkaSource`` (the only module that imports kafka-python).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

__all__ = ["Health", "Record", "Source"]


class Record(NamedTuple):
    """One raw record as read from a partition.

    A named tuple so that a source may hand out its own record tuples with the same field
    names (kafka-python's ``ConsumerRecord``) without copying them.
    """

    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """What a source knows about itself right now.

    ``connected``: the last attempt to reach the upstream succeeded. ``caught_up``: every
    partition has reached the end offset seen when the source started (restoring is over).
    ``lag``: end offset minus next offset, per partition, as last measured.
    """

    connected: bool
    caught_up: bool
    error: str | None = None
    lag: Mapping[int, int] = field(default_factory=dict)


class Source(Protocol):
    """Called only from the daemon's main thread."""

    kind: str
    """``"kafka"`` or ``"replay"``: the ``source`` metadata value of a live generation."""

    def start(self, offsets: Mapping[int, int] | None, *, resume_after_ns: int | None) -> None:
        """Position the source: at ``offsets`` (next offset per partition, from the bootstrap;
        None when it has none) where given, else by the source's own rule.
        ``resume_after_ns`` is the newest timestamp already held."""

    def poll(self, timeout_s: float) -> list[Record]:
        """Return the records available within ``timeout_s`` (possibly none)."""

    def positions(self) -> dict[int, int]:
        """Next offset to read per partition, covering every record returned so far."""

    def health(self) -> Health:
        """Current health; cheap (values are refreshed inside :meth:`poll`)."""

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        """Send ``record`` to the dead-letter destination with its reason (asynchronously)."""

    def flush(self, timeout_s: float) -> bool:
        """Wait until dead letters sent so far are stored; False if that failed or timed out."""

    def close(self) -> None:
        """Release connections; the source is not used afterwards."""
