"""The publisher's side of segments: checking a segment's table and preparing its file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contract.series import SERIES_ID_COLUMN, SeriesIdError, check_series_id, segment_of
from shm._index import TIME_COLUMN, SeriesIndex, encode_index, index_of_table
from shm._layout import MAX_SEGMENTS
from shm._meta import (
    EPOCH_KEY,
    GENERATION_KEY,
    INDEX_KEY,
    SEGMENT_KEY,
    SEGMENTS_KEY,
    Epoch,
)

__all__ = [
    "PreparedSegment",
    "RefusedTableError",
    "SegmentState",
    "check_data_schema",
    "check_segment_numbers",
    "prepare_segment",
]

Int64s = npt.NDArray[np.int64]


class RefusedTableError(ValueError):
    """A segment's table breaks a rule of ``Publisher.publish_segments`` (the message names
    the segment and the rule); nothing was published."""


@dataclass(frozen=True, slots=True)
class PreparedSegment:
    """One changed segment, checked, ready to be written."""

    segment: int
    batch: pa.RecordBatch
    index: SeriesIndex

    def schema(self, epoch: Epoch, generation: int, segments: int) -> pa.Schema:
        """The file's schema with the protocol's metadata."""
        return self.batch.schema.with_metadata(
            {
                EPOCH_KEY: str(epoch),
                GENERATION_KEY: str(generation),
                SEGMENT_KEY: str(self.segment),
                SEGMENTS_KEY: str(segments),
                INDEX_KEY: encode_index(self.index),
            }
        )


@dataclass(frozen=True, slots=True)
class SegmentState:
    """What the last segmented generation of this run holds, per segment: the generation
    that wrote its file (0: empty) and its series and row counts. Replaced, never modified,
    so a failed publication leaves it as it was."""

    segments: int
    data_schema: pa.Schema
    written: Int64s
    series: Int64s
    rows: Int64s
    series_set: int

    @classmethod
    def empty(cls, segments: int, data_schema: pa.Schema) -> SegmentState:
        """Every segment empty (the base of a first publication that names them all)."""
        zeros = np.zeros(segments, dtype=np.int64)
        return cls(segments, data_schema, zeros, zeros, zeros, 0)

    def after(
        self,
        generation: int,
        changed: Mapping[int, SeriesIndex | None],
        ids: Mapping[int, pa.Array[Any]],
    ) -> SegmentState:
        """The state once ``generation`` replaced the segments of ``changed`` (each by its
        new index; None: now empty); ``ids`` are the current ids of the non-empty segments,
        to tell whether the set of series changed. O(segments) only in array copies."""
        written, series, rows = self.written.copy(), self.series.copy(), self.rows.copy()
        same_set = self.series_set > 0
        for segment, index in changed.items():
            new_ids = index.ids if index is not None else None
            old_ids = ids.get(segment)
            if (new_ids is None) != (old_ids is None) or (
                new_ids is not None and old_ids is not None and not new_ids.equals(old_ids)
            ):
                same_set = False
            written[segment] = generation if index is not None else 0
            series[segment] = len(index) if index is not None else 0
            rows[segment] = index.total_rows if index is not None else 0
        return replace(
            self,
            written=written,
            series=series,
            rows=rows,
            series_set=self.series_set if same_set else generation,
        )


def check_data_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` without metadata when it can be segmented: a ``series_id`` string column, a
    ``time`` ``timestamp[ns]`` column and at least one other; else ValueError naming what
    is missing."""
    schema = schema.remove_metadata()
    names = schema.names
    if len(set(names)) != len(names):
        raise ValueError(f"column names repeat: {names}")
    if SERIES_ID_COLUMN not in names or schema.field(SERIES_ID_COLUMN).type != pa.string():
        raise ValueError(f"a segmented table needs a {SERIES_ID_COLUMN!r} column of type string")
    time_type = schema.field(TIME_COLUMN).type if TIME_COLUMN in names else None
    if time_type is None or not pa.types.is_timestamp(time_type) or time_type.unit != "ns":
        raise ValueError(f"a segmented table needs a {TIME_COLUMN!r} column of timestamp[ns]")
    return schema


def check_segment_numbers(changed: Mapping[int, object], segments: int, *, every: bool) -> None:
    """ValueError unless ``segments`` is in range and every key of ``changed`` is a segment
    number (with ``every``: each of them, a layout's first generation)."""
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}, got {segments}")
    for segment in changed:
        if not isinstance(segment, int) or not 0 <= segment < segments:
            raise ValueError(f"segment {segment!r} is not between 0 and {segments - 1}")
    if every and len(changed) != segments:
        missing = sorted(set(range(segments)) - set(changed))[:5]
        raise ValueError(
            f"this generation starts a segmented layout of {segments} segments: give every "
            f"segment (missing {missing}...); only later ones may give the changed ones"
        )


def prepare_segment(
    segment: int, table: pa.Table | None, segments: int, data_schema: pa.Schema | None
) -> tuple[pa.Schema | None, PreparedSegment | None]:
    """Check ``segment``'s new table and prepare its file: the generation's data schema
    (``data_schema``, or this table's when it is the first to give one) and what to write
    (None: the segment is now empty). :class:`RefusedTableError` names the segment and the
    rule a table breaks."""
    if table is None:
        return data_schema, None
    try:
        own = check_data_schema(table.schema)
        if data_schema is not None and not own.equals(data_schema):
            raise ValueError(
                f"columns {own} differ from the generation's {data_schema}; publish every "
                "segment to change them"
            )
        return own, _prepare(table, segment, segments) if table.num_rows else None
    except (ValueError, SeriesIdError) as exc:
        raise RefusedTableError(f"segment {segment}: {exc}") from None


def _prepare(table: pa.Table, segment: int, segments: int) -> PreparedSegment:
    if table.column(TIME_COLUMN).null_count:
        raise ValueError(f"column {TIME_COLUMN!r} holds nulls")
    index = index_of_table(table, "", check_time_order=True)
    for series_id in index.id_list():
        check_series_id(series_id)
        if segment_of(series_id, segments) != segment:
            raise ValueError(
                f"series {series_id[:40]!r} belongs to segment {segment_of(series_id, segments)}"
            )
    data = table.drop_columns([SERIES_ID_COLUMN])
    arrays = [column.combine_chunks() for column in data.columns]
    batch = pa.RecordBatch.from_arrays(arrays, schema=data.schema.remove_metadata())
    return PreparedSegment(segment, batch, index)
