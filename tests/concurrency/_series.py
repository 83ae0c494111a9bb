"""The stream the scenarios feed: the sample series continued as Kafka events.

Event ``i`` is the ``i``-th half-hour step after 2000-06-05T00:00Z with the sample's value
``i mod 4032`` (timestamps stay unique and regular however long a run is). A window bootstrap
snapshot holds events ``0 .. rows-1``; the topic then carries ``rows, rows+1, ...``, so the
window a daemon ends with is known exactly and "nothing lost, nothing counted twice" is a
comparison of tables.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from cache_daemon.bootstrap import snapshot_parquet
from cache_daemon.window import TIME_TYPE
from scripts.sample_window import SAMPLE

__all__ = [
    "STEP_NS",
    "T0_NS",
    "event",
    "index_of",
    "rows_of",
    "snapshot_bytes",
    "stamp",
    "table_of",
    "value",
]

T0_NS = 960_163_200 * 1_000_000_000  # 2000-06-05T00:00:00Z, the sample's first row
STEP_NS = 1_800 * 1_000_000_000


@functools.cache
def _values() -> np.ndarray[Any, np.dtype[np.float64]]:
    return pd.read_parquet(SAMPLE)["demand_mw"].to_numpy(dtype=np.float64)


def value(i: int) -> float:
    values = _values()
    return float(values[i % len(values)])


def stamp(i: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((T0_NS + i * STEP_NS) // 10**9))


def event(i: int) -> dict[str, object]:
    """The JSON object of event ``i``, as the daemon expects it on the topic."""
    return {"time": stamp(i), "demand_mw": value(i)}


def index_of(time_ns: int) -> int:
    return (time_ns - T0_NS) // STEP_NS


def table_of(indices: Iterable[int]) -> pa.Table:
    """The window table holding exactly events ``indices`` (ascending)."""
    idx = sorted(indices)
    times = pa.array([T0_NS + i * STEP_NS for i in idx], type=pa.int64()).cast(TIME_TYPE)
    return pa.table({"time": times, "demand_mw": pa.array([value(i) for i in idx], pa.float64())})


def rows_of(table: pa.Table) -> dict[int, float]:
    """``{event index: value}`` of a published window."""
    times = table.column("time").cast(pa.int64()).to_numpy()
    values = table.column("demand_mw").to_numpy()
    return {index_of(int(t)): float(v) for t, v in zip(times, values, strict=True)}


def snapshot_bytes(rows: int, *, topic: str) -> bytes:
    """An S3 bootstrap snapshot of events ``0 .. rows-1`` whose recorded offset for partition 0
    of ``topic`` is 0 (the topic starts with event ``rows``)."""
    return snapshot_parquet(table_of(range(rows)), offsets={0: 0}, topic=topic)
