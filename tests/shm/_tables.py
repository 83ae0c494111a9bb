"""Tables used by the shm tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from contract.series import segment_of


def make_table(rows: int, value: float = 0.0) -> pa.Table:
    """A window-shaped table: UTC timestamps at 30-minute steps and one float column."""
    start = np.datetime64("2000-06-05T00:00:00", "ns").astype(np.int64)
    step = 30 * 60 * 1_000_000_000
    times = pa.array(start + np.arange(rows, dtype=np.int64) * step, pa.timestamp("ns", tz="UTC"))
    values = pa.array(np.full(rows, value, dtype=np.float64))
    return pa.table({"time": times, "demand_mw": values})


def series_table(rows_by_id: dict[str, int], value: float | dict[str, float] = 0.0) -> pa.Table:
    """A multi-series table (``series_id``, ``time``, ``demand_mw``) sorted by id then time:
    ``rows_by_id[x]`` rows for series ``x``, every value ``value`` (or ``value[x]``)."""
    ids = sorted(x for x, rows in rows_by_id.items() if rows > 0)
    counts = np.array([rows_by_id[x] for x in ids], dtype=np.int64)
    start = np.datetime64("2000-06-05T00:00:00", "ns").astype(np.int64)
    step = 30 * 60 * 1_000_000_000
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    values = [value[x] if isinstance(value, dict) else value for x in ids]
    return pa.table(
        {
            "series_id": pa.array(np.repeat(np.array(ids, dtype=object), counts), pa.string()),
            "time": pa.array(start + offsets * step, pa.timestamp("ns", tz="UTC")),
            "demand_mw": pa.array(np.repeat(np.array(values, dtype=np.float64), counts)),
        }
    )


def split_by_segment(table: pa.Table, segments: int) -> dict[int, pa.Table | None]:
    """``table``'s rows per segment (every segment named, an empty one by an empty table),
    each sorted as ``table`` is."""
    ids = np.array(table.column("series_id").to_pylist(), dtype=object)
    owner = np.array([segment_of(x, segments) for x in ids], dtype=np.int64)
    out: dict[int, pa.Table | None] = {}
    for segment in range(segments):
        rows = np.flatnonzero(owner == segment)
        out[segment] = table.take(rows)
    return out
