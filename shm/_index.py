"""Which rows of a table hold which series: the series index of one segment.

A multi-series table (``series_id``, ``time``, values) is sorted by ``series_id`` then ``time``,
so each series is one contiguous run of rows. The index records, in id order, each run's id,
row count and first and last time: a lookup is a dict probe and a slice, a listing reads the
index alone (never the data's pages).

The publisher derives it while it checks a segment's table and stores it in the segment file
(:func:`encode_index`); a reader decodes it once per segment file (:func:`decode_index`), or
derives it from an inline generation's table (:func:`index_of_table`).
"""

from __future__ import annotations

import base64
import binascii
from array import array
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contract.series import SERIES_ID_COLUMN

__all__ = [
    "TIME_COLUMN",
    "SeriesIndex",
    "SeriesSummary",
    "decode_index",
    "encode_index",
    "index_of_table",
    "strictly_increasing",
    "time_values",
]

TIME_COLUMN = "time"

Int64s = npt.NDArray[np.int64]

_INDEX_FIELDS: list[pa.Field[Any]] = [
    pa.field(SERIES_ID_COLUMN, pa.string()),
    pa.field("rows", pa.int64()),
    pa.field("time_min", pa.int64()),
    pa.field("time_max", pa.int64()),
]
_INDEX_SCHEMA = pa.schema(_INDEX_FIELDS)


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """One series as a listing shows it: its id, row count and first and last ``time`` in
    nanoseconds since the epoch (None for a series without rows, which only a one-series
    generation published without a ``series_id`` column can have, or without a ``time``
    column)."""

    series_id: str
    rows: int
    time_min_ns: int | None
    time_max_ns: int | None


class SeriesIndex:
    """The series of one table, in id order, each a contiguous run of rows.

    Immutable once built; safe to share between threads.
    """

    __slots__ = ("_bounds", "_ids", "_positions", "_rows", "_time_max", "_time_min")

    def __init__(
        self,
        ids: pa.Array[Any],
        rows: Int64s,
        time_min: Int64s | None,
        time_max: Int64s | None,
    ) -> None:
        self._ids = ids
        self._rows = rows
        self._time_min = time_min
        self._time_max = time_max
        # A lookup is one probe of a dict of small ints (a segment's positions are cached
        # int objects) and two reads of one flat array: no tuple or int object of its own
        # to reach, so fewer cache misses when lookups hit random segments of a large
        # window, and less memory per series.
        self._positions: dict[str, int] = {
            series_id: position
            for position, series_id in enumerate(cast(list[str], ids.to_pylist()))
        }
        if len(self._positions) != len(ids):
            raise ValueError("a series id appears in more than one run of rows")
        self._bounds = array("q", [0])
        self._bounds.frombytes(np.cumsum(rows, dtype=np.int64).tobytes())

    @property
    def ids(self) -> pa.Array[Any]:
        """The series ids, ascending (UTF-8 byte order, which is ``str`` order)."""
        return self._ids

    def id_list(self) -> list[str]:
        """The ids as Python strings, ascending."""
        return cast(list[str], self._ids.to_pylist())

    @property
    def total_rows(self) -> int:
        """Rows of all series together."""
        return int(self._rows.sum())

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, series_id: object) -> bool:
        return series_id in self._positions

    def locate(self, series_id: str) -> tuple[int, int] | None:
        """(first row, row count) of ``series_id``; None when the table does not hold it."""
        position = self._positions.get(series_id)
        if position is None:
            return None
        bounds = self._bounds
        start = bounds[position]
        return start, bounds[position + 1] - start

    def summary(self, series_id: str) -> SeriesSummary | None:
        """The listing entry of ``series_id``; None when the table does not hold it."""
        position = self._positions.get(series_id)
        if position is None:
            return None
        rows = self._bounds[position + 1] - self._bounds[position]
        if self._time_min is None or self._time_max is None or rows == 0:
            return SeriesSummary(series_id, rows, None, None)
        return SeriesSummary(
            series_id, rows, int(self._time_min[position]), int(self._time_max[position])
        )

    def as_table(self) -> pa.Table:
        """The index as a table (``series_id``, ``rows``, ``time_min``, ``time_max``)."""
        zeros = np.zeros(len(self._rows), dtype=np.int64)
        return pa.table(
            [
                self._ids,
                pa.array(self._rows, pa.int64()),
                pa.array(self._time_min if self._time_min is not None else zeros, pa.int64()),
                pa.array(self._time_max if self._time_max is not None else zeros, pa.int64()),
            ],
            schema=_INDEX_SCHEMA,
        )

    def run_positions(self) -> npt.NDArray[np.int64]:
        """For every row, the position of its series in :attr:`ids` (to rebuild the
        ``series_id`` column of a table stored without it)."""
        return np.repeat(np.arange(len(self._rows), dtype=np.int64), self._rows)


def strictly_increasing(values: pa.Array[Any]) -> bool:
    """True when every value is less than the next one (so sorted and unique)."""
    if len(values) < 2:
        return True
    return bool(pc.all(pc.less(values.slice(0, len(values) - 1), values.slice(1))).as_py())


def time_values(table: pa.Table) -> Int64s | None:
    """The ``time`` column as int64 nanoseconds (a view when it is one chunk of
    ``timestamp[ns]``); None when the table has no timestamp ``time`` column."""
    if TIME_COLUMN not in table.column_names:
        return None
    column = table.column(TIME_COLUMN)
    if not pa.types.is_timestamp(column.type):
        return None
    if column.type.unit != "ns":
        column = column.cast(pa.timestamp("ns", tz=column.type.tz))
    values: Int64s = column.combine_chunks().view(pa.int64()).to_numpy(zero_copy_only=False)
    return values


def index_of_table(
    table: pa.Table, default_id: str, *, check_time_order: bool = False
) -> SeriesIndex:
    """Derive the index of ``table``: one series named ``default_id`` when it has no
    ``series_id`` column, else one per run of equal ids.

    Raises ValueError when ``series_id`` is not a string column without nulls, when the rows
    of a series are not contiguous or the runs not in ascending id order, and (with
    ``check_time_order``) when a series' times decrease.
    """
    times = time_values(table)
    if SERIES_ID_COLUMN not in table.column_names:
        rows = np.array([table.num_rows], dtype=np.int64)
        if times is None or table.num_rows == 0:
            return SeriesIndex(pa.array([default_id], pa.string()), rows, None, None)
        if check_time_order and np.any(np.diff(times) < 0):
            raise ValueError("the rows are not sorted by time")
        return SeriesIndex(
            pa.array([default_id], pa.string()), rows, times[:1].copy(), times[-1:].copy()
        )
    column = table.column(SERIES_ID_COLUMN)
    if column.type != pa.string():
        raise ValueError(f"column {SERIES_ID_COLUMN!r} is {column.type}, not string")
    if column.null_count:
        raise ValueError(f"column {SERIES_ID_COLUMN!r} holds nulls")
    encoded = pc.run_end_encode(  # type: ignore[attr-defined]
        column.combine_chunks(), run_end_type=pa.int64()
    )
    ids: pa.Array[Any] = encoded.values
    ends: Int64s = encoded.run_ends.to_numpy()
    if not strictly_increasing(ids):
        raise ValueError(
            f"the rows are not sorted by {SERIES_ID_COLUMN}: the rows of a series must be "
            "contiguous and the series in ascending id order"
        )
    rows = np.diff(ends, prepend=0)
    if times is None:
        return SeriesIndex(ids, rows, None, None)
    if check_time_order and len(times) > 1:
        backwards = np.diff(times) < 0
        backwards[ends[:-1] - 1] = False  # a new series may start earlier
        if np.any(backwards):
            row = int(np.argmax(backwards)) + 1
            raise ValueError(f"the rows of a series are not sorted by time (row {row})")
    starts = ends - rows
    return SeriesIndex(ids, rows, times[starts], times[ends - 1])


def encode_index(index: SeriesIndex) -> str:
    """The index as metadata text: base64 of an Arrow IPC stream of :meth:`SeriesIndex.as_table`
    (metadata stays valid UTF-8, as every protocol key's value is)."""
    sink = pa.BufferOutputStream()
    table = index.as_table()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def decode_index(text: str) -> SeriesIndex:
    """Inverse of :func:`encode_index`; ValueError for anything it did not write (another
    schema, nulls, empty or negative runs, ids out of order, ``time_min > time_max``)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        table = pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    except (binascii.Error, UnicodeEncodeError, pa.ArrowException) as exc:
        raise ValueError(f"series index is not readable: {exc}") from None
    if not table.schema.equals(_INDEX_SCHEMA):
        raise ValueError(f"series index has schema {table.schema}, expected {_INDEX_SCHEMA}")
    if any(column.null_count for column in table.columns):
        raise ValueError("series index holds nulls")
    table = table.combine_chunks()
    column = table.column(SERIES_ID_COLUMN)
    ids = cast("pa.Array[Any]", column.chunk(0) if column.num_chunks else pa.array([], pa.string()))
    rows, time_min, time_max = (
        table.column(name).to_numpy().astype(np.int64, copy=False)
        for name in ("rows", "time_min", "time_max")
    )
    if np.any(rows <= 0):
        raise ValueError("series index has a series without rows")
    if np.any(time_min > time_max):
        raise ValueError("series index has a series whose first time is after its last")
    if not strictly_increasing(ids):
        raise ValueError("series index ids are not in ascending order")
    return SeriesIndex(ids, rows, time_min, time_max)
