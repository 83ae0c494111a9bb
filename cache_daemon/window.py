"""The live window: pure logic, no I/O, no Kafka.

A :class:`Window` holds at most one row per timestamp (nanoseconds since the epoch, UTC) and
keeps them sorted. Its rules, applied event by event:

* **Duplicates**: the last write wins. Re-applying an identical row changes nothing (so
  replaying a stream after a restart is idempotent and does not cause a new publication).
* **Late events** whose timestamp still falls inside the window are inserted in order.
* **Too old**: an event that would be evicted at once (older than the window's lower edge) is
  dropped and reported as :attr:`Outcome.DROPPED_LATE`.
* **Bounds**: at most ``max_rows`` rows, and/or only rows with
  ``time > newest - max_duration_ns``; the oldest rows are evicted first.

The window's state is exactly its rows, so :meth:`Window.load` of a published table restores
it completely: a restart that re-applies the records after the published offsets ends in the
same state as an uninterrupted run. Rows loaded in bulk stay as arrays until the first event
arrives (many loaded series cost memory and time as arrays, not as Python objects).

Not thread-safe: the daemon's main loop is its only user.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cache_daemon.errors import SnapshotError

__all__ = ["TIME_TYPE", "Outcome", "Window", "reindex_regular", "table_arrays"]

TIME_TYPE = pa.timestamp("ns", tz="UTC")
_COMPACT_AT = 4096


class Outcome(enum.Enum):
    """What :meth:`Window.apply` did with one event."""

    INSERTED = "inserted"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DROPPED_LATE = "dropped_late"


class Window:
    """Sorted, de-duplicated, bounded rows of ``columns`` keyed by timestamp.

    ``version`` increases by one on every change of content; callers compare it to decide
    whether a new publication is needed.
    """

    # One window per series: slots keep the per-series overhead small.
    __slots__ = (
        "_appended",
        "_cache",
        "_head",
        "_keys",
        "_reshaped",
        "_rows",
        "columns",
        "max_duration_ns",
        "max_rows",
        "version",
    )

    def __init__(
        self,
        columns: Sequence[str],
        *,
        max_rows: int | None,
        max_duration_ns: int | None,
    ) -> None:
        if max_rows is None and max_duration_ns is None:
            raise ValueError("a window needs max_rows or max_duration_ns")
        if max_rows is not None and max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        if max_duration_ns is not None and max_duration_ns < 1:
            raise ValueError("max_duration_ns must be >= 1")
        self.columns: tuple[str, ...] = tuple(columns)
        self.max_rows = max_rows
        self.max_duration_ns = max_duration_ns
        self.version = 0
        # None while the rows are only the arrays in _cache (after a bulk load).
        self._rows: dict[int, tuple[float, ...]] | None = {}
        # Sorted timestamps; live ones are _keys[_head:]. Evicting from the front only moves
        # _head, so eviction is O(1) amortised even for windows of millions of rows.
        self._keys: list[int] = []
        self._head = 0
        # Arrays of the rows as last materialised, and what happened since: appends at the
        # end (and evictions at the front) extend them; anything else rebuilds them.
        self._cache: tuple[np.ndarray, np.ndarray] | None = None
        self._appended = 0
        self._reshaped = True

    def __len__(self) -> int:
        rows = self._rows
        return len(rows) if rows is not None else len(self._arrays()[0])

    @property
    def time_min(self) -> int | None:
        """Oldest timestamp held (ns), or ``None`` when empty."""
        if self._rows is None:
            return int(self._arrays()[0][0])
        return self._keys[self._head] if self._rows else None

    @property
    def time_max(self) -> int | None:
        """Newest timestamp held (ns), or ``None`` when empty."""
        if self._rows is None:
            return int(self._arrays()[0][-1])
        return self._keys[-1] if self._rows else None

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        assert self._cache is not None
        return self._cache

    def _thaw(self) -> dict[int, tuple[float, ...]]:
        """The rows as the dict and sorted keys that events change, from the arrays."""
        times, values = self._arrays()
        self._keys = times.tolist()
        self._head = 0
        rows = dict(zip(self._keys, map(tuple, values.tolist()), strict=True))
        self._rows = rows
        return rows

    def apply(self, time_ns: int, values: tuple[float, ...]) -> Outcome:
        """Apply one event; ``values`` is aligned with :attr:`columns`."""
        rows = self._rows
        if rows is None:
            rows = self._thaw()
        old = rows.get(time_ns)
        if old is not None:
            if old == values:
                return Outcome.UNCHANGED
            rows[time_ns] = values
            self.version += 1
            self._reshaped = True
            return Outcome.UPDATED
        keys = self._keys
        if rows:
            newest = keys[-1]
            if self.max_duration_ns is not None and time_ns <= newest - self.max_duration_ns:
                return Outcome.DROPPED_LATE
            if (
                self.max_rows is not None
                and len(rows) >= self.max_rows
                and time_ns < keys[self._head]
            ):
                return Outcome.DROPPED_LATE
            if time_ns > newest:
                keys.append(time_ns)
                self._appended += 1
            else:
                bisect.insort(keys, time_ns, lo=self._head)
                self._reshaped = True
        else:
            keys.append(time_ns)
            self._appended += 1
        rows[time_ns] = values
        self.version += 1
        if (self.max_rows is not None and len(rows) > self.max_rows) or (
            self.max_duration_ns is not None and keys[self._head] <= keys[-1] - self.max_duration_ns
        ):
            self._evict()
        return Outcome.INSERTED

    def _evict(self) -> None:
        rows, keys = self._rows, self._keys
        assert rows is not None
        if self.max_rows is not None:
            while len(rows) > self.max_rows:
                del rows[keys[self._head]]
                self._head += 1
        if self.max_duration_ns is not None:
            cutoff = keys[-1] - self.max_duration_ns
            while keys[self._head] <= cutoff:
                del rows[keys[self._head]]
                self._head += 1
        if self._head >= _COMPACT_AT and self._head * 2 >= len(keys):
            del keys[: self._head]
            self._head = 0

    def times(self) -> np.ndarray:
        """The live timestamps, ascending, as an int64 array (ns since the epoch, UTC).

        The returned array is shared with the window's cache: do not modify it.
        """
        return self.arrays()[0]

    def values(self) -> np.ndarray:
        """The live values as a float64 array of shape ``(rows, len(columns))``, by time.

        The returned array is shared with the window's cache: do not modify it.
        """
        return self.arrays()[1]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`times` and :meth:`values` together (shared with the cache: do not modify).

        O(1) when nothing changed since the last call, O(new rows) when only appends and
        evictions happened, else O(rows).
        """
        cache = self._cache
        if cache is not None and not self._appended and not self._reshaped:
            return cache
        return self._materialize()

    def _materialize(self) -> tuple[np.ndarray, np.ndarray]:
        keys, rows = self._keys, self._rows
        assert rows is not None  # arrays alone are always cached and current
        live = len(rows)
        if self._cache is None or self._reshaped:
            new_keys = keys[self._head :]
            old_times = np.empty(0, dtype=np.int64)
            old_values = np.empty((0, len(self.columns)), dtype=np.float64)
        else:
            new_keys = keys[max(self._head, len(keys) - self._appended) :]
            old_times, old_values = self._cache
        if new_keys or len(old_times) != live:
            fresh = np.array([rows[k] for k in new_keys], dtype=np.float64)
            fresh = fresh.reshape(len(new_keys), len(self.columns))
            times = np.concatenate([old_times, np.array(new_keys, dtype=np.int64)])[-live:]
            values = np.concatenate([old_values, fresh])[-live:]
            if live == 0:
                times, values = times[:0], values[:0]
            self._cache = (times, values)
        elif self._cache is None:
            self._cache = (old_times, old_values)
        self._appended = 0
        self._reshaped = False
        return self._cache

    def to_table(self, *, gap_policy: str = "keep") -> pa.Table:
        """The window as an Arrow table (``time`` then one float64 column per series).

        ``gap_policy="reindex"`` returns the rows on a regular grid at the inferred frequency
        (see :func:`reindex_regular`); the window's own rows are not changed.
        """
        times, values = self.times(), self.values()
        if gap_policy == "reindex":
            times, values = reindex_regular(times, values, max_rows=self.max_rows)
        arrays = [pa.array(times, type=pa.int64()).cast(TIME_TYPE)]
        arrays += [pa.array(np.ascontiguousarray(values[:, i])) for i in range(len(self.columns))]
        return pa.Table.from_arrays(arrays, names=["time", *self.columns])

    def load(self, table: pa.Table) -> int:
        """Apply every row of ``table`` (a published window or a snapshot) in time order.

        ``time`` may be any timestamp type; naive timestamps are taken as UTC. Extra columns
        are ignored. Returns the number of rows applied. Raises
        :class:`~cache_daemon.errors.SnapshotError` when a column is missing, not numeric,
        or holds nulls or non-finite values.
        """
        times, values = table_arrays(table, self.columns)
        return self.load_arrays(times, values)

    def load_arrays(self, times: np.ndarray, values: np.ndarray, *, presorted: bool = False) -> int:
        """Apply rows given as arrays (int64 ns, float64 ``(rows, columns)``) in time order
        (a stable sort: of equal times the last row wins; ``presorted``: the caller has
        sorted them so). Returns the number of rows.

        Into an empty window, rows with distinct times are taken in one step, which ends in
        the state that applying them one by one would reach.
        """
        if not presorted:
            order = np.argsort(times, kind="stable")
            times, values = times[order], values[order]
        if not len(self) and bool((times[1:] > times[:-1]).all()):
            self._take_sorted(times, values)
        else:
            for time_ns, row in zip(times.tolist(), values.tolist(), strict=True):
                self.apply(time_ns, tuple(row))
        return len(times)

    def _take_sorted(self, times: np.ndarray, values: np.ndarray) -> None:
        """Fill an empty window with rows of strictly increasing times, bounds applied; they
        stay arrays until the first event (see :meth:`_thaw`)."""
        if not len(times):
            return
        start = 0
        if self.max_duration_ns is not None:
            cutoff = int(times[-1]) - self.max_duration_ns
            if cutoff >= int(times[0]):
                start = int(np.searchsorted(times, cutoff, side="right"))
        if self.max_rows is not None:
            start = max(start, len(times) - self.max_rows)
        kept_times = np.ascontiguousarray(times[start:])
        kept_values = np.ascontiguousarray(values[start:], dtype=np.float64)
        self._keys = []
        self._head = 0
        self._rows = None
        self._cache = (kept_times, kept_values)
        self._appended = 0
        self._reshaped = False
        self.version += 1


def table_arrays(table: pa.Table, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The ``time`` column (int64 ns, UTC) and the value ``columns`` (float64, shape
    ``(rows, len(columns))``) of a published window or snapshot, in the table's row order.

    ``time`` may be any timestamp type; naive timestamps are taken as UTC; integer value
    columns are converted. Raises :class:`~cache_daemon.errors.SnapshotError` when a column
    is missing, not numeric, or holds nulls or non-finite values.
    """
    names = set(table.column_names)
    missing = [c for c in ("time", *columns) if c not in names]
    if missing:
        raise SnapshotError(f"table lacks column(s) {', '.join(missing)}")
    time_col = table.column("time")
    if not pa.types.is_timestamp(time_col.type):
        raise SnapshotError(f"column 'time' is {time_col.type}, not a timestamp")
    if time_col.null_count:
        raise SnapshotError("column 'time' holds nulls")
    try:
        naive = pc.cast(time_col, pa.timestamp(time_col.type.unit))
        times = pc.cast(pc.cast(naive, pa.timestamp("ns")), pa.int64()).to_numpy()
    except pa.ArrowInvalid as exc:
        raise SnapshotError(f"column 'time' is out of the nanosecond range: {exc}") from None
    arrays = []
    for name in columns:
        col = table.column(name)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            raise SnapshotError(f"column {name!r} is {col.type}, not numeric")
        arr = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        if col.null_count or not np.isfinite(arr).all():
            raise SnapshotError(f"column {name!r} holds nulls or non-finite values")
        arrays.append(arr)
    values = np.column_stack(arrays) if arrays else np.empty((len(times), 0))
    return np.asarray(times, dtype=np.int64), values


def reindex_regular(
    times: np.ndarray, values: np.ndarray, *, max_rows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Resample rows onto a regular grid ending at the newest timestamp.

    The step is the most common difference between consecutive timestamps. Grid points that
    have no row get values interpolated linearly in time from their neighbours; rows that fall
    between grid points are not kept. The grid holds at most ``max_rows`` points (or four times
    the input rows when unbounded), newest first. Fewer than three rows are returned unchanged.
    """
    if len(times) < 3:
        return times, values
    diffs = np.diff(times)
    steps, counts = np.unique(diffs, return_counts=True)
    step = int(steps[np.argmax(counts)])
    if step <= 0:
        return times, values
    limit = max_rows if max_rows is not None else 4 * len(times)
    points = min(int((times[-1] - times[0]) // step) + 1, limit)
    grid = times[-1] - step * np.arange(points - 1, -1, -1, dtype=np.int64)
    out = np.empty((points, values.shape[1]), dtype=np.float64)
    # Interpolate on offsets from the first row: epoch nanoseconds exceed float64 precision.
    x_grid = (grid - times[0]).astype(np.float64)
    x_rows = (times - times[0]).astype(np.float64)
    for i in range(values.shape[1]):
        out[:, i] = np.interp(x_grid, x_rows, values[:, i])
    return grid, out
