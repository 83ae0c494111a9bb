"""The series of one generation: how many, where each one's rows are, and their listing.

This is the only module of the web application that knows how series are laid out in a
published table (``contract.series``): a ``series_id`` column (UTF-8 text), rows sorted by
series id then time; a table without that column is one series, the default one
(:data:`contract.series.DEFAULT_SERIES_ID`), or none when it has no rows. Everything else
asks a :class:`SeriesCatalog`:

* :attr:`SeriesCatalog.count`: the number of series;
* :meth:`SeriesCatalog.lookup`: one series' rows in O(1) (:class:`SeriesRows`, zero-copy
  slices of the mapped table), or None for an id the generation does not hold;
* :meth:`SeriesCatalog.only`: the one series of a single-series window;
* :meth:`SeriesCatalog.page`: the series in id order, ``limit`` at a time after an id
  (:class:`SeriesPage`), each with its rows and time range (:class:`SeriesInfo`).

A catalog is derived once per generation per process (:meth:`SeriesCatalog.of`, through
``Snapshot.derive``), in one of two forms chosen by :func:`_build`:

* an inline generation (one table): grouped once, at the cost of one vectorised comparison of
  the id column (the boundaries are where the id changes; no Python step per row) and one
  dictionary entry per series; :attr:`SeriesRows.version` is the generation (its epoch and
  number);
* a segmented generation (``Snapshot.segmented``): nothing is built; each answer comes from
  the snapshot's series API (a lookup hashes the id to its segment and probes that segment's
  index, O(1); the listing is built once per set of series), and the version is
  ``Snapshot.segment_key``, which stays equal across generations that carry the series'
  segment over unchanged: its memoized forecast is reused, not recomputed. The time range
  is the one the publisher recorded (``time_min``/``time_max`` of the metadata). Nothing is
  O(window).

:attr:`SeriesRows.version` identifies a series' data: two lookups give equal versions only
when they hold the same rows, so what is derived from a series (its forecast) can be
memoized by it.

Order: ids are compared as Python strings, which for valid Unicode text is the order of their
UTF-8 bytes (code point order; ``tests/webapp/test_series_catalog.py`` checks both on random
ids), so it is also the order in which Arrow sorts the column.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.metadata import GenerationMeta, iso_ns
from contract.series import DEFAULT_SERIES_ID, SERIES_ID_COLUMN
from forecasting.features import FloatArray, IntArray
from shm import Snapshot

__all__ = ["SeriesCatalog", "SeriesInfo", "SeriesPage", "SeriesRows", "series_column_problem"]

_CATALOG_KEY = "webapp.series_catalog"
_TIME = "time"


def series_column_problem(schema: pa.Schema) -> str | None:
    """Why a published table's ``series_id`` column cannot name series (None when it can,
    or when there is no such column)."""
    index = schema.get_field_index(SERIES_ID_COLUMN)
    if index < 0:
        return None
    kind = schema.field(index).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return f"column {SERIES_ID_COLUMN!r} is {kind}, not string"
    return None


class SeriesRows:
    """One series of one generation: ``table`` is a zero-copy slice of the published data
    holding its rows in time order (its ``time`` and value columns; the ``series_id`` column
    too when an inline table has one). ``version`` is equal for two lookups only when their rows
    are the same (see the module docstring). Read-only.

    ``table`` may be given as a function that slices it: it is then called on first use, so
    that an answer memoized by ``version`` (a forecast) never pays for the slice (on a large
    window, reaching a random segment's Arrow objects is most of a lookup's time)."""

    __slots__ = ("_slice", "_table", "series_id", "version")

    def __init__(
        self, series_id: str, version: Hashable, table: pa.Table | Callable[[], pa.Table]
    ) -> None:
        self.series_id = series_id
        self.version = version
        self._table: pa.Table | None
        self._slice: Callable[[], pa.Table] | None
        if isinstance(table, pa.Table):
            self._table, self._slice = table, None
        else:
            self._table, self._slice = None, table

    @property
    def table(self) -> pa.Table:
        table = self._table
        if table is None:
            assert self._slice is not None
            # Two threads may both slice: the same rows, the second result kept.
            table = self._table = self._slice()
        return table

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SeriesRows):
            return NotImplemented
        return (
            self.series_id == other.series_id
            and self.version == other.version
            and bool(self.table.equals(other.table))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SeriesRows({self.series_id!r}, version={self.version!r})"

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def times_ns(self) -> IntArray:
        """The ``time`` column as int64 nanoseconds since the epoch (UTC), a view of the
        mapping. KeyError when the table has no ``time`` column."""
        return _int64(self.table.column(_TIME))

    def values(self, column: str) -> FloatArray:
        """The float64 column ``column``, a view of the mapping when it has no nulls.
        KeyError when the table has no such column."""
        return np.asarray(self.table.column(column).to_numpy(), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """One series in a listing: its id, rows and first and last times (int64 ns, UTC; None
    without a ``time`` column)."""

    series_id: str
    rows: int
    time_min_ns: int | None
    time_max_ns: int | None


@dataclass(frozen=True, slots=True)
class SeriesPage:
    """One page of :meth:`SeriesCatalog.page`: ``total`` series in the generation, the
    ``items`` after the requested id, and ``next_after``, the id to ask the next page after
    (None on the last page)."""

    total: int
    items: tuple[SeriesInfo, ...]
    next_after: str | None


class SeriesCatalog(ABC):
    """The series of one generation (see the module docstring): the interface every other
    module uses. Immutable, thread-safe.

    ``problem`` is set, and ``count`` is 0, when the layout cannot name its series (null
    ids, or the rows of one id not contiguous); the generation then serves no series.
    """

    __slots__ = ("problem",)

    def __init__(self, problem: str | None) -> None:
        self.problem = problem

    @staticmethod
    def of(snapshot: Snapshot) -> SeriesCatalog:
        """The catalog of ``snapshot``, built once per generation per process."""
        return snapshot.derive(_CATALOG_KEY, _build)

    @property
    @abstractmethod
    def count(self) -> int:
        """The number of series in the generation. O(1)."""

    @abstractmethod
    def lookup(self, series_id: str) -> SeriesRows | None:
        """The rows of ``series_id``, or None when the generation holds no such series. O(1)."""

    @abstractmethod
    def page(self, after: str | None, limit: int) -> SeriesPage:
        """Up to ``limit`` (>= 1) series whose id sorts after ``after`` (from the first when
        None), in id order. O(log count + limit)."""

    @abstractmethod
    def time_range(self) -> tuple[int, int] | None:
        """The first and last times over every series (int64 ns, UTC); None without series
        or without a ``time`` column."""

    def only(self) -> SeriesRows | None:
        """The series of a window holding exactly one, else None."""
        if self.count != 1:
            return None
        (item,) = self.page(None, 1).items
        return self.lookup(item.series_id)


class _TableCatalog(SeriesCatalog):
    """The catalog of a whole published table, grouped by its ``series_id`` column."""

    __slots__ = ("_index", "_sorted", "_starts", "_stops", "_table", "_times", "_version")

    def __init__(
        self,
        table: pa.Table,
        version: Hashable,
        ids: list[str],
        starts: IntArray,
        problem: str | None = None,
    ) -> None:
        if problem is None and len(set(ids)) != len(ids):
            problem = (
                f"the rows of a series are not contiguous (column {SERIES_ID_COLUMN!r} "
                "must be sorted)"
            )
        super().__init__(problem)
        if problem is not None:
            ids, starts = [], starts[:0]
        self._table = table
        self._version = version
        self._starts = starts
        self._stops = np.append(starts[1:], table.num_rows).astype(np.int64)[: len(starts)]
        self._index = {series_id: i for i, series_id in enumerate(ids)}
        # Sorted already when the publisher sorted the table: Python's sort then only checks.
        self._sorted = sorted(ids)
        self._times = _times_of(table)

    @property
    def count(self) -> int:
        return len(self._index)

    def lookup(self, series_id: str) -> SeriesRows | None:
        i = self._index.get(series_id)
        if i is None:
            return None
        start, stop = int(self._starts[i]), int(self._stops[i])
        return SeriesRows(series_id, self._version, self._table.slice(start, stop - start))

    def page(self, after: str | None, limit: int) -> SeriesPage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        first = 0 if after is None else bisect.bisect_right(self._sorted, after)
        ids = self._sorted[first : first + limit]
        items = tuple(self._info(series_id) for series_id in ids)
        more = first + limit < len(self._sorted)
        return SeriesPage(self.count, items, ids[-1] if more and ids else None)

    def time_range(self) -> tuple[int, int] | None:
        # O(count), vectorised: each series' first and last rows.
        if self._times is None or not self.count:
            return None
        return int(self._times[self._starts].min()), int(self._times[self._stops - 1].max())

    def _info(self, series_id: str) -> SeriesInfo:
        i = self._index[series_id]
        start, stop = int(self._starts[i]), int(self._stops[i])
        tmin = tmax = None
        if self._times is not None and stop > start:
            tmin, tmax = int(self._times[start]), int(self._times[stop - 1])
        return SeriesInfo(series_id, stop - start, tmin, tmax)


class _SegmentedCatalog(SeriesCatalog):
    """The catalog of a segmented generation: the snapshot's series API, nothing derived
    here (see the module docstring)."""

    __slots__ = ("_count", "_snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(None)
        self._snapshot = snapshot
        self._count = snapshot.series_count

    @property
    def count(self) -> int:
        return self._count

    def lookup(self, series_id: str) -> SeriesRows | None:
        snapshot = self._snapshot
        version = snapshot.series_key(series_id)
        if version is None:
            return None
        return SeriesRows(series_id, version, partial(_held_rows, snapshot, series_id))

    def page(self, after: str | None, limit: int) -> SeriesPage:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        snapshot = self._snapshot
        ids = snapshot.series_ids()
        more = ids.position_after(after) + limit < len(ids)
        items = tuple(
            SeriesInfo(s.series_id, s.rows, s.time_min_ns, s.time_max_ns)
            for s in snapshot.series_after(after, limit)
        )
        return SeriesPage(self._count, items, items[-1].series_id if more and items else None)

    def time_range(self) -> tuple[int, int] | None:
        meta = GenerationMeta.from_metadata(self._snapshot.metadata)
        first, last = iso_ns(meta.time_min), iso_ns(meta.time_max)
        if first is None or last is None or not self._count:
            return None
        return first, last


def _held_rows(snapshot: Snapshot, series_id: str) -> pa.Table:
    table = snapshot.series_table(series_id)
    if table is None:  # a snapshot is immutable: the series found by its key is there
        raise RuntimeError(f"series {series_id!r} vanished from generation {snapshot.generation}")
    return table


def _build(snapshot: Snapshot) -> SeriesCatalog:
    if snapshot.segmented:
        return _SegmentedCatalog(snapshot)
    table = snapshot.table
    version = (snapshot.epoch, snapshot.generation)
    rows = table.num_rows
    none = np.zeros(0, dtype=np.int64)
    if SERIES_ID_COLUMN not in table.column_names:
        if rows == 0:
            return _TableCatalog(table, version, [], none)
        return _TableCatalog(table, version, [DEFAULT_SERIES_ID], np.zeros(1, dtype=np.int64))
    column = table.column(SERIES_ID_COLUMN)
    problem = series_column_problem(table.schema)
    if problem is None and column.null_count:
        problem = f"column {SERIES_ID_COLUMN!r} has {column.null_count} null(s)"
    if problem is not None or rows == 0:
        return _TableCatalog(table, version, [], none, problem)
    ids = _one_chunk(column)
    # A series starts at row 0 and wherever the id differs from the row before.
    differs = pc.not_equal(ids.slice(1), ids.slice(0, rows - 1))
    changed = np.flatnonzero(differs.to_numpy(zero_copy_only=False)) + 1
    starts = np.concatenate([np.zeros(1, dtype=np.int64), changed.astype(np.int64)])
    names = ids.take(pa.array(starts)).to_pylist()
    return _TableCatalog(table, version, [str(n) for n in names], starts)


def _one_chunk(column: pa.ChunkedArray[Any]) -> pa.Array[Any]:
    # A generation is one record batch: one chunk, used as it is (no copy).
    if column.num_chunks == 1:
        return column.chunks[0]
    return pa.concat_arrays(column.chunks)


def _int64(column: pa.ChunkedArray[Any]) -> IntArray:
    return np.asarray(
        _one_chunk(column).to_numpy(zero_copy_only=False), dtype="datetime64[ns]"
    ).view(np.int64)


def _times_of(table: pa.Table) -> IntArray | None:
    if _TIME not in table.column_names or not pa.types.is_timestamp(table.schema.field(_TIME).type):
        return None
    return _int64(table.column(_TIME))
