"""The segments of a generation as a reader sees them: lazily parsed, indexed once, memoized.

A :class:`Segment` is shared by every snapshot whose manifest names the same segment file, so
what it derives (its index, its parsed table, the values callers memoize with
:meth:`Segment.derive`) is computed once per segment file per process, however many
generations carry the segment over.
"""

from __future__ import annotations

import contextlib
import mmap
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa

from contract.series import SERIES_ID_COLUMN, segment_of
from shm._index import SeriesIndex, SeriesSummary, decode_index, index_of_table
from shm._meta import (
    EPOCH_KEY,
    GENERATION_KEY,
    INDEX_KEY,
    SEGMENT_KEY,
    SEGMENTS_KEY,
    Epoch,
)
from shm.errors import CorruptGenerationError

__all__ = ["EmptySegment", "InlineSegment", "MappedSegment", "Segment", "SegmentKey"]

T = TypeVar("T")

SegmentKey = tuple[Epoch, int, int]
"""(epoch, generation that wrote the segment's data, segment index): equal for as long as a
segment's data is unchanged, different as soon as a generation rewrites it."""


class Segment:
    """The rows of one segment: an index, a table without ``series_id`` and a memo."""

    __slots__ = ("_lock", "_memo", "key")

    def __init__(self, key: SegmentKey) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._memo: dict[tuple[str, str], Any] = {}

    def index(self) -> SeriesIndex:
        """The series index (derived or decoded on first use)."""
        raise NotImplementedError

    def data(self) -> pa.Table:
        """The rows of every series, without the ``series_id`` column, zero-copy."""
        raise NotImplementedError

    def parts(self) -> tuple[SeriesIndex, pa.Table]:
        """:meth:`index` and :meth:`data` together (one call on a lookup's path)."""
        return self.index(), self.data()

    def series_table(self, series_id: str) -> pa.Table | None:
        """The rows of ``series_id`` without ``series_id``, a zero-copy slice; None when the
        segment does not hold it."""
        index, data = self.parts()
        span = index.locate(series_id)
        if span is None:
            return None
        return data.slice(span[0], span[1])

    def holds(self, series_id: str) -> bool:
        """Whether the segment holds ``series_id`` (an index probe, no data touched)."""
        return series_id in self.parts()[0]

    def summary(self, series_id: str) -> SeriesSummary | None:
        """The listing entry of ``series_id``, from the index alone."""
        return self.index().summary(series_id)

    def derive(self, series_id: str, key: str, fn: Callable[[pa.Table], T]) -> T | None:
        """``fn(series_table(series_id))`` computed at most once per segment and process."""
        memo_key = (key, series_id)
        try:
            return cast(T, self._memo[memo_key])
        except KeyError:
            pass
        table = self.series_table(series_id)
        if table is None:
            return None
        with self._lock:
            if memo_key not in self._memo:
                self._memo[memo_key] = fn(table)
            return cast(T, self._memo[memo_key])

    def with_ids(self, data_schema: pa.Schema) -> pa.Table:
        """The rows with their ``series_id`` column rebuilt, in ``data_schema``'s column
        order (a copy of the ids: O(rows))."""
        data = self.data()
        index = self.index()
        ids = index.ids.take(index.run_positions())
        position = data_schema.get_field_index(SERIES_ID_COLUMN)
        return data.add_column(position, data_schema.field(position), ids)


class EmptySegment(Segment):
    """A segment that holds no series (its manifest row says ``written`` 0)."""

    __slots__ = ("_data",)

    def __init__(self, key: SegmentKey, empty: pa.Table) -> None:
        super().__init__(key)
        self._data = empty

    def index(self) -> SeriesIndex:
        return _EMPTY_INDEX

    def data(self) -> pa.Table:
        return self._data


class InlineSegment(Segment):
    """The whole table of an inline generation (``Publisher.publish``), with or without a
    ``series_id`` column; its index is derived from the rows on first use (O(rows), once per
    generation and process)."""

    __slots__ = ("_data", "_default_id", "_index", "_table")

    def __init__(self, key: SegmentKey, table: pa.Table, default_id: str) -> None:
        super().__init__(key)
        self._table = table
        self._default_id = default_id
        self._index: SeriesIndex | None = None
        names = table.column_names
        self._data = table.drop_columns([SERIES_ID_COLUMN]) if SERIES_ID_COLUMN in names else table

    def index(self) -> SeriesIndex:
        if self._index is None:
            with self._lock:
                if self._index is None:
                    try:
                        self._index = index_of_table(self._table, self._default_id)
                    except ValueError as exc:
                        raise CorruptGenerationError(
                            f"generation {self.key[1]} cannot be read as series: {exc}"
                        ) from None
        return self._index

    def data(self) -> pa.Table:
        return self._data


class Expected:
    """What a manifest says about one segment file; checked when the file is parsed."""

    __slots__ = ("data_schema", "rows", "segments", "series")

    def __init__(self, data_schema: pa.Schema, segments: int, series: int, rows: int) -> None:
        self.data_schema = data_schema
        self.segments = segments
        self.series = series
        self.rows = rows


class MappedSegment(Segment):
    """A segment file, mapped read-only when its manifest is opened (so it outlives its
    unlinking) and parsed on first use: footer, metadata, index. Parsing checks everything
    against the manifest and raises :class:`CorruptGenerationError` (every time) when the
    file does not match."""

    __slots__ = ("_error", "_expected", "_mapping", "_name", "_parsed")

    def __init__(self, key: SegmentKey, name: str, mapping: mmap.mmap, expected: Expected) -> None:
        super().__init__(key)
        self._name = name
        self._mapping = mapping
        self._expected = expected
        self._parsed: tuple[SeriesIndex, pa.Table] | None = None
        self._error: CorruptGenerationError | None = None

    def index(self) -> SeriesIndex:
        return self._load()[0]

    def data(self) -> pa.Table:
        return self._load()[1]

    def parts(self) -> tuple[SeriesIndex, pa.Table]:
        return self._parsed or self._load()

    def _load(self) -> tuple[SeriesIndex, pa.Table]:
        parsed = self._parsed
        if parsed is not None:
            return parsed
        with self._lock:
            if self._parsed is None and self._error is None:
                try:
                    self._parsed = self._parse()
                except (ValueError, pa.ArrowException, UnicodeDecodeError) as exc:
                    self._error = CorruptGenerationError(f"segments/{self._name}: {exc}")
            if self._error is not None:
                raise self._error
            assert self._parsed is not None
            return self._parsed

    def _parse(self) -> tuple[SeriesIndex, pa.Table]:
        epoch, written, segment = self.key
        expected = self._expected
        reader = pa.ipc.open_file(pa.py_buffer(self._mapping))
        if reader.num_record_batches != 1:
            raise ValueError(f"holds {reader.num_record_batches} record batches, not one")
        meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        for key, value in (
            (EPOCH_KEY, str(epoch)),
            (GENERATION_KEY, str(written)),
            (SEGMENT_KEY, str(segment)),
            (SEGMENTS_KEY, str(expected.segments)),
        ):
            if meta.get(key) != value:
                raise ValueError(f"{key} is {meta.get(key, '')[:40]!r}, the manifest says {value}")
        index = decode_index(meta.get(INDEX_KEY, ""))
        batch = reader.get_batch(0)
        table = pa.Table.from_batches([batch]).replace_schema_metadata(None)
        if not table.schema.equals(expected.data_schema):
            raise ValueError(f"columns {table.schema} differ from the manifest's")
        if (len(index), index.total_rows, table.num_rows) != (
            expected.series,
            expected.rows,
            expected.rows,
        ):
            raise ValueError(
                f"{len(index)} series and {table.num_rows} rows; the manifest says "
                f"{expected.series} and {expected.rows}"
            )
        for series_id in index.id_list():
            if segment_of(series_id, expected.segments) != segment:
                raise ValueError(f"series {series_id[:40]!r} belongs to another segment")
        return index, table

    def release(self) -> None:
        """Unmap when nothing was parsed from the mapping (a generation that failed to open)."""
        if self._parsed is None:
            with contextlib.suppress(BufferError):
                self._mapping.close()


_EMPTY_INDEX = SeriesIndex(pa.array([], pa.string()), np.zeros(0, dtype=np.int64), None, None)
