"""An immutable view of one published generation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import pandas as pd
import pyarrow as pa

from contract.series import DEFAULT_SERIES_ID
from shm._index import SeriesSummary
from shm._layouts import InlineLayout, Layout, SegmentedLayout, SeriesIds
from shm._meta import Epoch
from shm._segment import SegmentKey
from shm.checksum import SegmentsChecksum, segment_checksum, table_checksum

__all__ = ["SegmentKey", "SeriesIds", "SeriesSummary", "Snapshot"]

T = TypeVar("T")

_FRAME_KEY = "shm.frame"
_TABLE_KEY = "shm.table"
_CHECKSUM_KEY = "shm.data_checksum"


class Snapshot:
    """One generation as zero-copy Arrow data over read-only memory mappings.

    The buffers point into the mapped files; the mappings stay valid for as long as this
    object (or anything derived from its buffers) is referenced, even after the publisher
    unlinks the files. Instances are shared by every thread of a process and must be treated
    as read-only.

    A generation is either *inline* (``Publisher.publish``: one file holds the table) or
    *segmented* (``Publisher.publish_segments``: a manifest names one file per segment of
    series). Both answer the series API the same way; a table without a ``series_id`` column
    is one series, named by the reader's ``default_series_id``.

    Costs of the series API on a segmented generation: :meth:`series_table`,
    :meth:`series_summary`, :meth:`segment_key`, :meth:`series_key` and
    :meth:`derive_series` hash the id to its segment and probe that segment's index: O(1),
    plus, the first time a process touches a segment file, reading its footer and index
    (O(series of the segment), never its data).
    A segment carried over unchanged into later generations keeps its index and memo.
    :meth:`series_ids` and :meth:`series_after` need every segment's index once per set of
    series (O(series), shared by later snapshots of the same reader while no series comes or
    goes). :attr:`table` and :meth:`frame` read every row (O(window)), once per snapshot.

    Attributes:
        generation: the publisher's counter for this table; strictly increasing within an
            epoch.
        metadata: the publisher's ``metadata`` argument, verbatim.
        published_at_ns: ``time.time_ns()`` of the publisher when it wrote the file.
        epoch: the run of the publisher that wrote it (see :class:`shm.Epoch`).
    """

    __slots__ = (
        "_derived",
        "_layout",
        "_lock",
        "epoch",
        "generation",
        "metadata",
        "published_at_ns",
    )

    def __init__(
        self,
        *,
        generation: int,
        metadata: dict[str, str],
        published_at_ns: int,
        epoch: Epoch,
        table: pa.Table | None = None,
        layout: Layout | None = None,
        default_series_id: str = DEFAULT_SERIES_ID,
    ) -> None:
        if (table is None) == (layout is None):
            raise TypeError("give a table or a layout")
        self.generation = generation
        self.epoch = epoch
        self.metadata = metadata
        self.published_at_ns = published_at_ns
        self._layout = (
            layout
            if layout is not None
            else InlineLayout(epoch, generation, cast(pa.Table, table), default_series_id)
        )
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def table(self) -> pa.Table:
        """Every row. Inline: the published table, one record batch, zero-copy. Segmented:
        every segment's rows with their ``series_id`` column rebuilt (a copy of the ids,
        O(window), once per snapshot), one chunk per non-empty segment, each sorted by
        ``series_id`` then ``time`` but segments in segment order, not by id. Prefer the
        series API on segmented generations."""
        if isinstance(self._layout, InlineLayout):
            return self._layout.table()
        return self.derive(_TABLE_KEY, lambda snapshot: snapshot._layout.table())

    @property
    def segmented(self) -> bool:
        """Whether the generation is a manifest of segments (``publish_segments``), as
        opposed to one inline table (``publish``)."""
        return isinstance(self._layout, SegmentedLayout)

    def data_checksum(self) -> str:
        """The checksum of every row, computed from the mapped data (O(window), once per
        snapshot and process): :func:`~shm.table_checksum` of an inline generation's table;
        for a segmented one, the :class:`~shm.SegmentsChecksum` of its segments'
        :func:`~shm.segment_checksum`. What a publisher's caller that records either
        in its metadata can be checked against; not for a request's path."""
        return self.derive(_CHECKSUM_KEY, _data_checksum)

    @property
    def num_rows(self) -> int:
        """Rows of every series together, O(1) (O(segments) for a manifest)."""
        return self._layout.num_rows

    @property
    def segments(self) -> int:
        """The number of segments (1 for an inline generation)."""
        return self._layout.segments

    @property
    def series_count(self) -> int:
        """How many series the generation holds (a table without ``series_id``: 1)."""
        return self._layout.series_count

    def series_table(self, series_id: str) -> pa.Table | None:
        """The rows of ``series_id`` (``time`` and the value columns, no ``series_id``), a
        zero-copy slice; None when the generation does not hold it. A table without a
        ``series_id`` column answers for the default series id only.

        Raises :class:`~shm.errors.CorruptGenerationError` when the segment file holding it
        does not match its manifest (only a file altered after the publisher wrote it can).
        """
        return self._layout.segment(series_id).series_table(series_id)

    def series_summary(self, series_id: str) -> SeriesSummary | None:
        """Rows and first and last time of ``series_id`` (from the index, no data page is
        read); None when the generation does not hold it."""
        return self._layout.segment(series_id).summary(series_id)

    def series_ids(self) -> SeriesIds:
        """Every series id, ascending (``str`` order), as a sequence over an Arrow array."""
        return self._layout.series_ids()

    def series_after(self, after: str | None, limit: int) -> list[SeriesSummary]:
        """Up to ``limit`` series in id order, starting after the id ``after`` (from the
        first with None): one page of a listing, O(log series + limit) once
        :meth:`series_ids` is built."""
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        ids = self._layout.series_ids()
        start = ids.position_after(after)
        page: Sequence[str] = ids[start : start + limit]
        return self._layout.summaries(page)

    def segment_key(self, series_id: str) -> SegmentKey:
        """An identity of the data ``series_id`` is read from: equal across generations
        while the segment holding it is carried over unchanged, different once a
        generation rewrites that segment (or for another publisher run). A key for
        memoizing per-series values outside the snapshot."""
        return self._layout.segment(series_id).key

    def series_key(self, series_id: str) -> SegmentKey | None:
        """:meth:`segment_key` of ``series_id`` when the generation holds it, else None: an
        index probe, no data touched (cheaper than :meth:`series_table` when the caller may
        not need the rows, e.g. when a value memoized under the key answers). Raises as
        :meth:`series_table`."""
        segment = self._layout.segment(series_id)
        return segment.key if segment.holds(series_id) else None

    def derive_series(self, series_id: str, key: str, fn: Callable[[pa.Table], T]) -> T | None:
        """``fn(self.series_table(series_id))``, computed at most once per segment file and
        process under ``key``: later generations that carry the segment over unchanged get
        the same value without calling ``fn``. None (``fn`` not called) when the generation
        does not hold the series. Thread-safe; values stay in memory for as long as the
        segment is part of a held snapshot, so ``key`` should not grow without bound (e.g.
        include a model version, not a request id)."""
        return self._layout.segment(series_id).derive(series_id, key, fn)

    def derive(self, key: str, fn: Callable[[Snapshot], T]) -> T:
        """Return ``fn(self)``, computed at most once per snapshot and process under ``key``.

        Use it for anything a request needs that depends only on the generation (a DataFrame,
        features, a checksum): the first request after a new generation pays for it, the others
        get the cached value. Thread-safe: concurrent first callers wait for one computation.
        """
        try:
            return cast(T, self._derived[key])
        except KeyError:
            pass
        with self._lock:
            if key not in self._derived:
                self._derived[key] = fn(self)
            return cast(T, self._derived[key])

    def frame(self) -> pd.DataFrame:
        """:attr:`table` as a pandas DataFrame, converted once per snapshot.

        Converted with ``split_blocks=True`` so that numeric columns without nulls are numpy views
        of the mapping (no copy); those arrays are read-only, so accidental mutation raises.
        """
        return self.derive(_FRAME_KEY, _to_frame)

    def __repr__(self) -> str:
        return (
            f"Snapshot(generation={self.generation}, rows={self.num_rows}, "
            f"segments={self.segments})"
        )


def _to_frame(snapshot: Snapshot) -> pd.DataFrame:
    return snapshot.table.to_pandas(split_blocks=True, self_destruct=False)


def _data_checksum(snapshot: Snapshot) -> str:
    layout = snapshot._layout
    if not isinstance(layout, SegmentedLayout):
        return table_checksum(snapshot.table)
    combined = SegmentsChecksum(layout.segments)
    schema = layout.manifest.data_schema
    for segment, entry in enumerate(layout.entries):
        if entry is not None:
            combined.set(segment, segment_checksum(entry.with_ids(schema)))
    return combined.hexdigest()
