"""Many series in one window: a :class:`~cache_daemon.window.Window` per series id.

:class:`SeriesWindows` holds one :class:`Window` per series (:mod:`contract.series`), each with
the configured bounds (rows and/or duration apply per series). Its rules, beside each
window's own:

* **Series limit.** At most ``max_series`` series: an event for a new series beyond it raises
  :class:`~contract.series.SeriesIdError` with the reason ``series_limit`` and changes nothing,
  so the series already held lose nothing.
* **Series TTL** (optional). Silence is measured in event time, so that a stalled stream or a
  broker outage never empties the window and a replay after a restart decides exactly as the
  first pass did: the *stream time* is the newest timestamp applied to any series, capped at
  the wall clock (one record stamped far in the future cannot expire every other series). A
  series whose newest row is more than ``ttl_ns`` older than the stream time is dropped as soon
  as the stream time gets there, so it is absent from the next publication; drops are counted
  (:meth:`SeriesWindows.pop_expired`). The first event of a new series that is already that old
  is dropped as late and creates nothing.
* **Changes.** The ids of the series that changed (rows inserted or updated, series created or
  dropped) since :meth:`SeriesWindows.clear_changed` are kept, so a publisher can rewrite only
  what changed: :meth:`~SeriesWindows.changed_segments` and
  :meth:`~SeriesWindows.segment_table` (segments by :func:`contract.series.segment_of`).

Tables (:meth:`~SeriesWindows.to_table`, :meth:`~SeriesWindows.segment_table`) have the columns
``series_id`` (string), ``time`` (timestamp[ns, UTC]) and one float64 column per value column,
rows sorted by series id (code point order, which is UTF-8 byte order) and then time; they are
built per series from each window's cached arrays and joined with vectorised concatenation.

The state is exactly the rows of every series, so :meth:`SeriesWindows.load` of a published
table restores it completely: a restart that re-applies the records after the published
offsets ends in the same state as an uninterrupted run (the stream time is the newest row,
which no bound or TTL ever removes).

Applying an event is a dict lookup plus :meth:`Window.apply`. Not thread-safe: the daemon's
main loop is its only user.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cache_daemon.errors import SnapshotError
from cache_daemon.id_column import IdColumns, repeated_ids
from cache_daemon.window import TIME_TYPE, Outcome, Window, reindex_regular, table_arrays
from contract.series import (
    DEFAULT_SERIES_ID,
    SERIES_ID_COLUMN,
    SERIES_LIMIT,
    SeriesIdError,
    check_series_id,
    segment_of,
)

__all__ = ["SeriesWindows"]

_INSERTED, _UPDATED, _DROPPED_LATE = Outcome.INSERTED, Outcome.UPDATED, Outcome.DROPPED_LATE


class SeriesWindows:
    """The windows of every series, keyed by series id.

    ``columns``, ``max_rows``, ``max_duration_ns``: each series' :class:`Window`.
    ``max_series``: ``None`` for no limit. ``ttl_ns``: ``None`` for no TTL.
    ``default_series``: the id of rows without one (a table without a ``series_id`` column).
    ``clock``: wall time in ns, the cap of the stream time (injectable for tests).

    ``version`` increases on every change of content, as :attr:`Window.version` does.
    """

    def __init__(
        self,
        columns: Sequence[str],
        *,
        max_rows: int | None,
        max_duration_ns: int | None,
        max_series: int | None = None,
        ttl_ns: int | None = None,
        default_series: str = DEFAULT_SERIES_ID,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_series is not None and max_series < 1:
            raise ValueError("max_series must be >= 1")
        if ttl_ns is not None and ttl_ns < 1:
            raise ValueError("ttl_ns must be >= 1")
        Window(columns, max_rows=max_rows, max_duration_ns=max_duration_ns)  # checks bounds
        self.columns: tuple[str, ...] = tuple(columns)
        self.max_rows = max_rows
        self.max_duration_ns = max_duration_ns
        self.max_series = max_series
        self.ttl_ns = ttl_ns
        self.default_series = check_series_id(default_series)
        self.version = 0
        self._clock = clock
        self._windows: dict[str, Window] = {}
        self._changed: set[str] = set()
        self._expired = 0
        self._sorted_ids: list[str] | None = []
        # TTL: the stream time, and one (time <= the series' newest, id) entry per series;
        # an entry that surfaces while its series is still fresh is pushed back with the
        # series' newest time, so checking costs O(1) per event and O(log series) per push.
        self._stream_ns: int | None = None
        self._heap: list[tuple[int, str]] = []
        # Series ids per segment, for one segment count, built on first use.
        self._segments: tuple[int, list[set[str]]] | None = None
        # The whole table's id column (to_table): with one series, remembered across calls.
        self._id_columns = IdColumns()

    # -- size -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Rows held, every series together (O(series): a series is never empty, so
        :attr:`series_count` tells in O(1) whether any row is held)."""
        return sum(map(len, self._windows.values()))

    @property
    def series_count(self) -> int:
        """Number of series held (each holds at least one row)."""
        return len(self._windows)

    @property
    def time_max(self) -> int | None:
        """Newest timestamp held in any series (ns), or ``None`` when empty (O(series))."""
        times = [t for window in self._windows.values() if (t := window.time_max) is not None]
        return max(times, default=None)

    def __contains__(self, series_id: object) -> bool:
        return series_id in self._windows

    def get(self, series_id: str) -> Window | None:
        """The window of ``series_id`` (do not change it), or ``None``."""
        return self._windows.get(series_id)

    def series_ids(self) -> list[str]:
        """Every series id, sorted (do not modify the list)."""
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._windows)
        return self._sorted_ids

    # -- events -----------------------------------------------------------------------------

    def apply(self, series_id: str, time_ns: int, values: tuple[float, ...]) -> Outcome:
        """Apply one event to ``series_id``'s window (created on its first event).

        The first event of a series that the TTL would drop at once (older than the stream
        time minus the TTL) creates nothing and is :attr:`Outcome.DROPPED_LATE`. Raises
        :class:`~contract.series.SeriesIdError` (``series_limit``) for a new series when
        ``max_series`` are held; nothing changes then.
        """
        window = self._windows.get(series_id)
        if window is None:
            if self._silent(time_ns):
                return _DROPPED_LATE
            window = self._create(series_id, time_ns)
        outcome = window.apply(time_ns, values)
        if outcome is _INSERTED:
            self._changed.add(series_id)
            self.version += 1
            if self.ttl_ns is not None and (self._stream_ns is None or time_ns > self._stream_ns):
                self._advance(time_ns)
        elif outcome is _UPDATED:
            self._changed.add(series_id)
            self.version += 1
        return outcome

    def _silent(self, time_ns: int) -> bool:
        """A series whose newest row is at ``time_ns`` would be dropped by the TTL."""
        stream, ttl = self._stream_ns, self.ttl_ns
        return stream is not None and ttl is not None and time_ns < stream - ttl

    def _create(self, series_id: str, time_ns: int) -> Window:
        if self.max_series is not None and len(self._windows) >= self.max_series:
            raise SeriesIdError(
                SERIES_LIMIT,
                f"series {series_id[:40]!r} is new and {len(self._windows)} series are held "
                f"(MAX_SERIES={self.max_series})",
            )
        return self._new_window(series_id, time_ns)

    def _new_window(self, series_id: str, oldest_ns: int) -> Window:
        """An empty window for a new series whose rows will be no older than ``oldest_ns``."""
        window = Window(self.columns, max_rows=self.max_rows, max_duration_ns=self.max_duration_ns)
        self._windows[series_id] = window
        self._sorted_ids = None
        if self.ttl_ns is not None:
            heapq.heappush(self._heap, (oldest_ns, series_id))
        if self._segments is not None:
            count, members = self._segments
            members[segment_of(series_id, count)].add(series_id)
        return window

    def _advance(self, time_ns: int) -> None:
        """Move the stream time to ``time_ns`` (capped at the wall clock); drop every series
        silent for longer than the TTL."""
        stream = min(time_ns, self._clock())
        if self._stream_ns is not None and stream <= self._stream_ns:
            return
        self._stream_ns = stream
        assert self.ttl_ns is not None
        cutoff = stream - self.ttl_ns
        heap = self._heap
        while heap and heap[0][0] < cutoff:
            _, series_id = heapq.heappop(heap)
            newest = self._windows[series_id].time_max
            assert newest is not None  # a held series is never empty
            if newest < cutoff:
                self._drop(series_id)
            else:
                heapq.heappush(heap, (newest, series_id))

    def _drop(self, series_id: str) -> None:
        del self._windows[series_id]
        self._changed.add(series_id)
        self._sorted_ids = None
        self._expired += 1
        self.version += 1
        if self._segments is not None:
            count, members = self._segments
            members[segment_of(series_id, count)].discard(series_id)

    def pop_expired(self) -> int:
        """Series dropped by the TTL since the last call."""
        expired, self._expired = self._expired, 0
        return expired

    # -- changes ----------------------------------------------------------------------------

    def changed_series(self) -> frozenset[str]:
        """Ids of the series changed, created or dropped since :meth:`clear_changed`."""
        return frozenset(self._changed)

    def changed_segments(self, segments: int) -> set[int]:
        """The segments (of ``segments``) holding a series changed since
        :meth:`clear_changed`; a dropped series counts for the segment that held it."""
        return {segment_of(series_id, segments) for series_id in self._changed}

    def clear_changed(self) -> None:
        """Forget the changes (after they were published)."""
        self._changed.clear()

    # -- tables -----------------------------------------------------------------------------

    def to_table(self, *, gap_policy: str = "keep") -> pa.Table:
        """Every series as one table (see the module docstring for its form).

        ``gap_policy="reindex"`` puts each series on its own regular grid
        (:func:`~cache_daemon.window.reindex_regular`); the windows are not changed.
        """
        return self._table(self.series_ids(), gap_policy, self._id_columns)

    @property
    def schema(self) -> pa.Schema:
        """The schema of every table this builds (:meth:`to_table`, :meth:`segment_table`)."""
        return self._table((), "keep", repeated_ids).schema

    def segment_series(self, segment: int, segments: int) -> list[str]:
        """The sorted ids of the series held in ``segment`` of ``segments``."""
        if not 0 <= segment < segments:
            raise ValueError(f"segment {segment} is not in 0..{segments - 1}")
        if self._segments is None or self._segments[0] != segments:
            members: list[set[str]] = [set() for _ in range(segments)]
            for series_id in self._windows:
                members[segment_of(series_id, segments)].add(series_id)
            self._segments = (segments, members)
        return sorted(self._segments[1][segment])

    def segment_table(
        self, segment: int, segments: int, *, gap_policy: str = "keep"
    ) -> pa.Table | None:
        """The rows of the series in ``segment`` of ``segments`` (in the form of
        :meth:`to_table`), or ``None`` when that segment holds no series."""
        ids = self.segment_series(segment, segments)
        return self._table(ids, gap_policy, repeated_ids) if ids else None

    def _table(
        self,
        ids: Sequence[str],
        gap_policy: str,
        id_column: Callable[[Sequence[str], Sequence[int]], pa.StringArray],
    ) -> pa.Table:
        width = len(self.columns)
        if not ids:
            times, values, counts = np.empty(0, np.int64), np.empty((0, width)), []
        else:
            # Comprehensions keep the per-series Python work to a few fast steps.
            parts = [window.arrays() for window in map(self._windows.__getitem__, ids)]
            if gap_policy == "reindex":
                parts = [reindex_regular(t, v, max_rows=self.max_rows) for t, v in parts]
            times_parts = [part[0] for part in parts]
            values_parts = [part[1] for part in parts]
            counts = list(map(len, times_parts))
            if len(parts) == 1:  # one series (a keyless topic): its arrays as they are
                times, values = parts[0]
            else:
                times, values = np.concatenate(times_parts), np.concatenate(values_parts)
        series = id_column(ids, counts)
        arrays: list[pa.Array[Any]] = [series, pa.array(times, TIME_TYPE)]
        arrays += [pa.array(np.ascontiguousarray(values[:, i])) for i in range(width)]
        return pa.Table.from_arrays(arrays, names=[SERIES_ID_COLUMN, "time", *self.columns])

    # -- restore ----------------------------------------------------------------------------

    def load(self, table: pa.Table) -> int:
        """Apply every row of ``table`` (a published window or a snapshot): rows with a
        ``series_id`` go to that series, a table without the column is the default series.

        Series beyond ``max_series`` are kept (a restart never loses data); new ones are
        refused until fewer are held. Returns the number of rows applied. Raises
        :class:`~cache_daemon.errors.SnapshotError` naming what is unusable (see
        :func:`~cache_daemon.window.table_arrays`; a ``series_id`` column that is not text,
        holds nulls, or holds an id that cannot name a series).
        """
        times, values = table_arrays(table, self.columns)
        if SERIES_ID_COLUMN in table.column_names:
            codes, ids = _series_codes(table.column(SERIES_ID_COLUMN))
        else:
            codes, ids = np.zeros(len(times), dtype=np.int64), [self.default_series]
        # By series, then time, each series' rows are one sorted slice. A published table
        # is in that order already; anything else gets one stable sort.
        same = codes[1:] == codes[:-1]
        if not bool(np.all((codes[1:] > codes[:-1]) | (same & (times[1:] > times[:-1])))):
            order = np.lexsort((times, codes))
            times, values, codes = times[order], values[order], codes[order]
        starts = np.searchsorted(codes, np.arange(len(ids) + 1)).tolist()
        for code, series_id in enumerate(ids):
            start, end = starts[code], starts[code + 1]
            if start < end:
                self._load_series(series_id, times[start:end], values[start:end])
        newest = self.time_max
        if self.ttl_ns is not None and newest is not None:
            self._advance(newest)
        return len(times)

    def _load_series(self, series_id: str, times: np.ndarray, values: np.ndarray) -> None:
        """Load one series' rows, sorted by time."""
        window = self._windows.get(series_id)
        if window is None:
            window = self._new_window(series_id, int(times[0]))
        version = window.version
        window.load_arrays(times, values, presorted=True)
        if window.version != version:
            self._changed.add(series_id)
            self.version += 1


def _series_codes(column: pa.ChunkedArray[Any] | pa.Array[Any]) -> tuple[np.ndarray, list[str]]:
    """(code per row, id per code) of a ``series_id`` column; SnapshotError if unusable."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise SnapshotError(f"column {SERIES_ID_COLUMN!r} is {column.type}, not text")
    if column.null_count:
        raise SnapshotError(f"column {SERIES_ID_COLUMN!r} holds nulls")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.cast(kind)
    encoded = cast("pa.DictionaryArray[Any, Any]", pc.dictionary_encode(column))
    ids = [str(series_id) for series_id in encoded.dictionary.to_pylist()]
    _check_ids(ids)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    return codes, ids


def _check_ids(ids: Iterable[str]) -> None:
    for series_id in ids:
        try:
            check_series_id(series_id)
        except SeriesIdError as exc:
            raise SnapshotError(
                f"column {SERIES_ID_COLUMN!r} holds an id that cannot name a series: {exc.detail}"
            ) from None
