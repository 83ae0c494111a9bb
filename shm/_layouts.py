"""How a snapshot finds its rows: one inline table, or segments named by a manifest."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from typing import Any, cast, overload

import pyarrow as pa
import pyarrow.compute as pc

from contract.series import segment_of
from shm._index import SeriesSummary
from shm._manifest import Manifest
from shm._meta import Epoch
from shm._segment import EmptySegment, InlineSegment, Segment

__all__ = ["InlineLayout", "Layout", "Listing", "SegmentedLayout", "SeriesIds"]


class SeriesIds(Sequence[str]):
    """Series ids in ascending order over an Arrow string array (no Python list of every
    id is built); ``position_after`` is a binary search."""

    __slots__ = ("_ids",)

    def __init__(self, ids: pa.Array[Any]) -> None:
        self._ids = ids

    @property
    def arrow(self) -> pa.Array[Any]:
        """The ids as an Arrow string array (zero-copy)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, item: int) -> str: ...
    @overload
    def __getitem__(self, item: slice) -> list[str]: ...
    def __getitem__(self, item: int | slice) -> str | list[str]:
        if isinstance(item, slice):
            return cast(list[str], self._ids[item].to_pylist())
        value = self._ids[item].as_py()
        assert isinstance(value, str)
        return value

    def position_after(self, series_id: str | None) -> int:
        """Index of the first id greater than ``series_id`` (0 for None)."""
        if series_id is None:
            return 0
        return bisect.bisect_right(self._ids, series_id, key=lambda scalar: scalar.as_py())


class Listing:
    """The sorted ids of a generation's series, built on first use and shared by every later
    snapshot of the same reader with the same set of series (``key``)."""

    __slots__ = ("_ids", "_lock", "key")

    def __init__(self, key: tuple[Epoch, int, int]) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._ids: SeriesIds | None = None

    def ids(self, build: Callable[[], pa.Array[Any]]) -> SeriesIds:
        """The ids, from ``build()`` the first time."""
        if self._ids is None:
            with self._lock:
                if self._ids is None:
                    self._ids = SeriesIds(build())
        return self._ids


class Layout:
    """What a snapshot delegates its series API to."""

    __slots__ = ()

    @property
    def segments(self) -> int:
        raise NotImplementedError

    @property
    def num_rows(self) -> int:
        raise NotImplementedError

    @property
    def series_count(self) -> int:
        raise NotImplementedError

    def segment(self, series_id: str) -> Segment:
        """The segment that holds (or would hold) ``series_id``."""
        raise NotImplementedError

    def table(self) -> pa.Table:
        """Every row, ``series_id`` included when the generation has one."""
        raise NotImplementedError

    def series_ids(self) -> SeriesIds:
        """Every series id, ascending."""
        raise NotImplementedError

    def summaries(self, series_ids: Sequence[str]) -> list[SeriesSummary]:
        """The listing entries of ``series_ids`` (ids the generation does not hold are left
        out)."""
        out = []
        for series_id in series_ids:
            summary = self.segment(series_id).summary(series_id)
            if summary is not None:
                out.append(summary)
        return out


class InlineLayout(Layout):
    """An inline generation: the file holds the table itself."""

    __slots__ = ("_segment", "_table")

    def __init__(self, epoch: Epoch, generation: int, table: pa.Table, default_id: str) -> None:
        self._table = table
        self._segment = InlineSegment((epoch, generation, 0), table, default_id)

    @property
    def segments(self) -> int:
        return 1

    @property
    def num_rows(self) -> int:
        return self._table.num_rows

    @property
    def series_count(self) -> int:
        return len(self._segment.index())

    def segment(self, series_id: str) -> Segment:
        return self._segment

    def table(self) -> pa.Table:
        return self._table

    def series_ids(self) -> SeriesIds:
        return SeriesIds(self._segment.index().ids)


class SegmentedLayout(Layout):
    """A manifest and one entry per segment (None for an empty one)."""

    __slots__ = ("_count", "_empty", "_listing", "entries", "epoch", "manifest")

    def __init__(
        self,
        epoch: Epoch,
        manifest: Manifest,
        entries: list[Segment | None],
        listing: Listing,
    ) -> None:
        self.epoch = epoch
        self.manifest = manifest
        self.entries = entries
        self._listing = listing
        self._empty: pa.Table | None = None
        self._count = manifest.segments

    @property
    def listing(self) -> Listing:
        """The shared listing holder (a reader hands it to the next snapshot)."""
        return self._listing

    @property
    def segments(self) -> int:
        return self.manifest.segments

    @property
    def num_rows(self) -> int:
        return int(self.manifest.rows.sum())

    @property
    def series_count(self) -> int:
        return int(self.manifest.series.sum())

    def segment(self, series_id: str) -> Segment:
        number = segment_of(series_id, self._count)
        entry = self.entries[number]
        if entry is not None:
            return entry
        if self._empty is None:
            self._empty = self.manifest.segment_schema.empty_table()
        return EmptySegment((self.epoch, 0, number), self._empty)

    def table(self) -> pa.Table:
        schema = self.manifest.data_schema
        parts = [entry.with_ids(schema) for entry in self.entries if entry is not None]
        if not parts:
            return schema.empty_table()
        return pa.concat_tables(parts)

    def series_ids(self) -> SeriesIds:
        return self._listing.ids(self._sorted_ids)

    def _sorted_ids(self) -> pa.Array[Any]:
        parts = [entry.index().ids for entry in self.entries if entry is not None]
        if not parts:
            return pa.array([], pa.string())
        ids = pa.concat_arrays(parts)
        return ids.take(pc.sort_indices(ids))
