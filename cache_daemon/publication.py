"""What goes into each generation besides the table, and when to publish.

The metadata is :class:`contract.metadata.GenerationMeta` (its keys are documented there); the
counters it carries are restored at restart so nothing is counted twice. What it says about
the rows (count, time range, schema, checksum) is a :class:`WindowFacts`: from the whole table
for an inline generation, from per-segment figures for a segmented one
(:mod:`cache_daemon.writer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import pyarrow as pa
import pyarrow.compute as pc

from contract.metadata import Counters, GenerationMeta, iso_utc, schema_fingerprint
from shm import table_checksum

__all__ = ["Coalescer", "ModelInfo", "WindowFacts", "build_metadata"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A verified model artifact installed in the shm directory as ``file``."""

    version: str
    sha256: str
    file: str


@dataclass(frozen=True, slots=True)
class WindowFacts:
    """What a generation's metadata says about its rows: how many, the oldest and newest
    time over every series (ns; None without rows), the schema and the checksum
    (``window_checksum``)."""

    rows: int
    time_min_ns: int | None
    time_max_ns: int | None
    schema: pa.Schema
    checksum: str

    @classmethod
    def of_table(cls, table: pa.Table) -> WindowFacts:
        """The facts of a whole table (an inline generation): O(rows). Its rows are sorted
        by series, so the oldest and newest rows are found by a scan of ``time``;
        ``checksum`` is :func:`shm.table_checksum`."""
        bounds = pc.min_max(table.column("time"))
        oldest, newest = (cast(pa.TimestampScalar, bounds[end]).value for end in ("min", "max"))
        return cls(table.num_rows, oldest, newest, table.schema, table_checksum(table))


def build_metadata(
    facts: WindowFacts,
    *,
    series: int,
    offsets: Mapping[int, int],
    topic: str,
    source: str,
    state: str,
    model: ModelInfo | None,
    counters: Counters,
) -> dict[str, str]:
    """The generation metadata of a window of ``series`` series described by ``facts``."""
    return GenerationMeta(
        offsets=dict(offsets),
        topic=topic,
        source=source,
        state=state,
        rows=facts.rows,
        series=series,
        time_min=iso_utc(facts.time_min_ns),
        time_max=iso_utc(facts.time_max_ns),
        schema_fingerprint=schema_fingerprint(facts.schema),
        model_version=model.version if model else "",
        model_sha256=model.sha256 if model else "",
        model_file=model.file if model else "",
        window_checksum=facts.checksum,
        counters=counters,
    ).to_metadata()


class Coalescer:
    """Decides when to publish: on the leading edge of a change, at most ``burst``
    publications back to back and one per ``interval_ns`` on average, and only when something
    changed.

    The rate is a token bucket, kept as the generic cell rate algorithm keeps it: one
    instant (``_tat``) that each publication moves one interval later (from now, if it lies
    in the past); a change is due once now is within ``burst - 1`` intervals of it. So a
    change that arrives after a quiet spell is due at once (a lone event is never held back),
    and so are the next ``burst - 1`` changes if they come sooner: a few events held up
    together (a pause of the broker, the network or this process) each go out as they arrive,
    instead of waiting together for the next interval. Past that, changes are held and go out
    together once an interval's allowance is back: a sustained stream is coalesced into at
    most one publication per interval (plus the ``burst`` at its start). ``burst=1`` is a
    plain minimum interval between publications.

    The interval is counted from the moment the caller captured the published content (the
    ``now_ns`` it passes to :meth:`published`), not from the end of the write: otherwise the
    write's own duration would push every following slot later.

    A publication that took longer than the interval itself (a window whose changes touch
    many segments, a catch-up where every poll changes thousands of series) also keeps the
    next one at least as long after its end as it took (:meth:`published`'s ``took_ns``): the loop
    then spends at most half its time publishing and the rest reading, so a backlog is
    coalesced into fewer, larger publications instead of one per interval.

    ``content`` is anything comparable that changes when a reader would see something new
    (window version, state, model); ``progress`` changes when only offsets/counters moved
    (duplicates, dead letters): that is published at most once per ``checkpoint_ns`` so that a
    restart does not re-read a long run of records that changed nothing.
    """

    def __init__(
        self, interval_ns: int, *, burst: int = 1, checkpoint_ns: int = 1_000_000_000
    ) -> None:
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.interval_ns = interval_ns
        self.burst = burst
        self.checkpoint_ns = checkpoint_ns
        self._last_ns: int | None = None
        self._tat = 0
        self._content: object = None
        self._progress: object = None
        self._not_before_ns = 0

    def due(self, now_ns: int, content: object, progress: object) -> bool:
        """True when a publication should happen now."""
        return self.wait_ns(now_ns, content, progress) == 0

    def wait_ns(self, now_ns: int, content: object, progress: object) -> int | None:
        """Nanoseconds until :meth:`due` could turn true for these values; None if never."""
        if self._last_ns is None:
            return max(0, self._not_before_ns - now_ns)
        if content != self._content:
            target = self._tat - (self.burst - 1) * self.interval_ns
        elif progress != self._progress:
            target = self._last_ns + self.checkpoint_ns
        else:
            return None
        return max(0, target - now_ns, self._not_before_ns - now_ns)

    def published(
        self, now_ns: int, content: object, progress: object, *, took_ns: int = 0
    ) -> None:
        """Record a successful publication of ``content``/``progress`` as captured at
        ``now_ns``, whose capture and write took ``took_ns``."""
        self._tat = max(self._tat, now_ns) + self.interval_ns
        self._last_ns = now_ns
        self._content = content
        self._progress = progress
        self._not_before_ns = now_ns + 2 * took_ns if took_ns > self.interval_ns else 0

    def failed(self, now_ns: int, backoff_ns: int) -> None:
        """Record a failed publication: no new attempt before ``backoff_ns`` from now."""
        self._not_before_ns = now_ns + backoff_ns
