"""The ``series_id`` column of a window table, built from its buffers.

A window table repeats each series' id on every row of that series. Building that column by
``pa.array(ids).take(positions)`` costs about 100 µs for a 10,000-row window even with one
series; assembling the offsets and the bytes directly costs about 13 µs, and this column is
built at every publication, on the path from an event to the readers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

__all__ = ["IdColumns", "repeated_ids"]

_INT32_MAX = 2**31 - 1
# Room to grow of a remembered column: an eighth of its rows, and at least this many.
_SLACK_MIN = 1024


def repeated_ids(ids: Sequence[str], counts: Sequence[int]) -> pa.StringArray:
    """A ``string`` array holding ``ids[i]`` ``counts[i]`` times, in order, without nulls:
    equal to ``pa.array(ids, pa.string()).take(np.repeat(range(len(ids)), counts))``.

    Raises ValueError when ``ids`` and ``counts`` differ in length or a count is negative;
    pyarrow's own error (``ArrowInvalid``) when the bytes exceed a ``string`` array's 2 GiB.
    """
    if len(ids) != len(counts):
        raise ValueError(f"{len(ids)} ids for {len(counts)} counts")
    if any(count < 0 for count in counts):
        raise ValueError(f"a negative count in {list(counts)}")
    encoded = [series_id.encode() for series_id in ids]
    sizes = np.repeat(np.fromiter(map(len, encoded), np.int64, len(encoded)), counts)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    if offsets[-1] > _INT32_MAX:
        # Too large for int32 offsets: let pyarrow raise its own error.
        return pa.array(ids, pa.string()).take(np.repeat(np.arange(len(ids)), counts))
    data = b"".join(raw * count for raw, count in zip(encoded, counts, strict=True))
    return pa.StringArray.from_buffers(
        len(sizes), pa.py_buffer(offsets.astype(np.int32).tobytes()), pa.py_buffer(data)
    )


class IdColumns:
    """:func:`repeated_ids` that remembers the column of one series: asked again for that
    series with at most as many rows, it returns a slice of the remembered column (equal to
    what :func:`repeated_ids` builds). The remembered column has room for an eighth more rows
    (at least 1,024) than asked, so a growing window rebuilds it only now and then; it is
    built anew, and the old one let go, when the series changes, more rows are asked, or
    fewer than half of them. Several series: :func:`repeated_ids`, and the remembered column
    is let go.
    Not thread-safe (the daemon's loop is its only user)."""

    __slots__ = ("_column", "_series_id")

    def __init__(self) -> None:
        self._series_id: str | None = None
        self._column: pa.StringArray | None = None

    def __call__(self, ids: Sequence[str], counts: Sequence[int]) -> pa.StringArray:
        if len(ids) != 1 or len(counts) != 1 or counts[0] < 0:
            self._series_id = self._column = None
            return repeated_ids(ids, counts)
        series_id, count = ids[0], counts[0]
        column = self._column
        if (
            column is None
            or self._series_id != series_id
            or not count <= len(column) <= 2 * count + _SLACK_MIN
        ):
            room = max(count // 8, _SLACK_MIN)
            # Never past a string array's 2 GiB of bytes where ``count`` alone fits.
            room = max(0, min(room, _INT32_MAX // max(1, len(series_id.encode())) - count))
            column = repeated_ids(ids, [count + room])
            self._series_id, self._column = series_id, column
        return column.slice(0, count)
