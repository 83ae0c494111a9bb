"""Tables used by the shm tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def make_table(rows: int, value: float = 0.0) -> pa.Table:
    """A window-shaped table: UTC timestamps at 30-minute steps and one float column."""
    start = np.datetime64("2000-06-05T00:00:00", "ns").astype(np.int64)
    step = 30 * 60 * 1_000_000_000
    times = pa.array(start + np.arange(rows, dtype=np.int64) * step, pa.timestamp("ns", tz="UTC"))
    values = pa.array(np.full(rows, value, dtype=np.float64))
    return pa.table({"time": times, "demand_mw": values})
