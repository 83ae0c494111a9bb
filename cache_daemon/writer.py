"""Writing the windows as the next generation: one inline table, or segments of which only
those holding a changed series are written.

``PUBLISH_LAYOUT`` chooses (:func:`segment_count`):

* ``inline``: every generation is the whole table in one file (``Publisher.publish``): O(rows
  of every series) per generation;
* ``segmented``: the series are spread over ``shm.segments_for(series)`` segments
  (``Publisher.publish_segments``) and a generation writes only the segments holding a series
  changed since the last one (``SeriesWindows.changed_segments``); the others are named
  again, not rewritten: O(rows of the changed segments + segments);
* ``auto`` (the default): inline while the window holds one series (a keyless topic, exactly
  as before segments existed), segmented beyond.

The segment count (``shm.segments_for`` with ``SERIES_PER_SEGMENT`` series per segment on
average) follows the series count upwards as soon as ``segments_for`` asks for more
(a power of two: each time the series double) and downwards only once it asks for a quarter
or less, so a window hovering around a threshold does not rewrite itself on every crossing. A
generation that changes the count, the first segmented one of a run and the first after an
inline one write every segment, one segment's table in memory at a time.

A segmented generation's metadata is built from per-segment figures the writer keeps
(:class:`SegmentLedger`) instead of from the whole table: ``rows`` is their sum, ``time_min``
and ``time_max`` their extremes, ``window_checksum`` the :class:`shm.SegmentsChecksum` of the
segments' :func:`shm.segment_checksum` (each computed when its segment is written, so a
reader with the files, ``Snapshot.data_checksum``, recomputes the same value). Nothing in it
costs O(window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cache_daemon.config import PublishLayout
from cache_daemon.publication import WindowFacts
from cache_daemon.series_windows import SeriesWindows
from shm import (
    SERIES_PER_SEGMENT,
    Publisher,
    SegmentsChecksum,
    segment_checksum,
    segments_for,
)

__all__ = ["PublishLayout", "SegmentLedger", "WindowWriter", "segment_count"]

_NO_MIN = np.iinfo(np.int64).max
_NO_MAX = np.iinfo(np.int64).min
# The count shrinks only when the series need this many times fewer segments.
_SHRINK = 4


def segment_count(
    layout: PublishLayout,
    series: int,
    current: int | None,
    series_per_segment: int = SERIES_PER_SEGMENT,
) -> int | None:
    """The segment count of the next generation of ``series`` series (None: inline), given
    the ``current`` one (None: the last generation was inline, or there was none)."""
    if layout == "inline" or (layout == "auto" and series <= 1):
        return None
    wanted = segments_for(series, series_per_segment)
    if current is None or wanted > current or wanted * _SHRINK <= current:
        return wanted
    return current


class SegmentLedger:
    """What the last segmented generation holds per segment: rows, oldest and newest time,
    checksum. :meth:`facts` sums them up in O(segments), vectorised (the checksum in O(1)).
    :meth:`copy` stages the changes of a publication that may fail."""

    __slots__ = ("_checksum", "_max", "_min", "_rows", "schema", "segments")

    def __init__(self, segments: int, schema: pa.Schema) -> None:
        self.segments = segments
        self.schema = schema
        self._rows = np.zeros(segments, dtype=np.int64)
        self._min = np.full(segments, _NO_MIN, dtype=np.int64)
        self._max = np.full(segments, _NO_MAX, dtype=np.int64)
        self._checksum = SegmentsChecksum(segments)

    def copy(self) -> SegmentLedger:
        other = SegmentLedger.__new__(SegmentLedger)
        other.segments, other.schema = self.segments, self.schema
        other._rows, other._min, other._max = self._rows.copy(), self._min.copy(), self._max.copy()
        other._checksum = self._checksum.copy()
        return other

    def record(self, segment: int, table: pa.Table | None) -> None:
        """Record ``segment``'s new table (None: empty): O(its rows)."""
        if table is None or not table.num_rows:
            self._rows[segment], self._min[segment], self._max[segment] = 0, _NO_MIN, _NO_MAX
            self._checksum.set(segment, None)
            return
        bounds = pc.min_max(table.column("time").cast(pa.int64()))
        self._rows[segment] = table.num_rows
        self._min[segment] = bounds["min"].as_py()
        self._max[segment] = bounds["max"].as_py()
        self._checksum.set(segment, segment_checksum(table))

    def facts(self) -> WindowFacts:
        """The figures of every segment together."""
        rows = int(self._rows.sum())
        oldest = int(self._min.min()) if rows else None
        newest = int(self._max.max()) if rows else None
        return WindowFacts(rows, oldest, newest, self.schema, self._checksum.hexdigest())


class _SegmentTables(Mapping[int, "pa.Table | None"]):
    """The tables of the segments to write, each built when the publisher asks for it and
    recorded in ``ledger`` then (the publisher reads each once, in order)."""

    def __init__(
        self,
        windows: SeriesWindows,
        segments: int,
        order: Sequence[int],
        gap_policy: str,
        ledger: SegmentLedger,
    ) -> None:
        self._windows = windows
        self._segments = segments
        self._order = order
        self._gap_policy = gap_policy
        self._ledger = ledger

    def __getitem__(self, segment: int) -> pa.Table | None:
        table = self._windows.segment_table(segment, self._segments, gap_policy=self._gap_policy)
        self._ledger.record(segment, table)
        return table

    def __iter__(self) -> Iterator[int]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


class WindowWriter:
    """Publishes ``windows`` through ``publisher`` in the layout ``layout`` (see the module
    docstring). The caller clears the windows' changes after a successful :meth:`write`.
    Not thread-safe (the daemon's loop is its only user)."""

    def __init__(
        self,
        publisher: Publisher,
        windows: SeriesWindows,
        *,
        layout: PublishLayout = "auto",
        gap_policy: str = "keep",
        series_per_segment: int = SERIES_PER_SEGMENT,
    ) -> None:
        self.publisher = publisher
        self.windows = windows
        self.layout = layout
        self.gap_policy = gap_policy
        self.series_per_segment = series_per_segment
        self._ledger: SegmentLedger | None = None

    @property
    def segments(self) -> int | None:
        """The segment count of the last generation written (None: inline, or none yet)."""
        return self.publisher.segments

    def write(self, describe: Callable[[WindowFacts], Mapping[str, str]]) -> tuple[int, int]:
        """Write the windows as the next generation with the metadata ``describe(facts)``;
        return its number and rows. Raises what the publisher raises (``PublishError``...);
        the previous generation then stays, and the next call writes at least what this one
        would have."""
        current = self.publisher.segments
        segments = segment_count(
            self.layout, self.windows.series_count, current, self.series_per_segment
        )
        if segments is None:
            table = self.windows.to_table(gap_policy=self.gap_policy)
            facts = WindowFacts.of_table(table)
            generation = self.publisher.publish(table, metadata=describe(facts))
            self._ledger = None
            return generation, facts.rows
        ledger = self._ledger
        if current == segments and ledger is not None and ledger.segments == segments:
            staged = ledger.copy()
            order = sorted(self.windows.changed_segments(segments))
        else:
            staged = SegmentLedger(segments, self.windows.schema)
            order = list(range(segments))
        tables = _SegmentTables(self.windows, segments, order, self.gap_policy, staged)
        generation = self.publisher.publish_segments(
            tables, segments=segments, metadata=lambda: describe(staged.facts())
        )
        self._ledger = staged
        return generation, staged.facts().rows
