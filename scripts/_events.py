"""Turn the sample series into the project's Kafka events (pure functions, no I/O).

An event is one JSON object per record: ``{"time": "<ISO-8601 UTC with Z>", "<column>": <float>}``.
Three time modes:

- ``original``: the series' own times, in order (the same rows as the snapshot);
- ``continue``: the rows again, cycled, with times that carry on after the last row of the
  series at the series' own step (the series spans whole weeks, so cycling keeps its weekly
  shape); this is what a live feed after the bootstrap snapshot looks like;
- ``now``: like ``continue`` but starting at the current time rounded down to the step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["TIME_MODES", "TimeMode", "events", "series_step_ns"]

TimeMode = Literal["original", "continue", "now"]
TIME_MODES: tuple[TimeMode, ...] = ("original", "continue", "now")


def series_step_ns(times: pd.Series) -> int:
    """The series' regular step in nanoseconds (the most common difference).

    Raises ``ValueError`` when the times are not strictly increasing.
    """
    ns = times.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    diffs = np.diff(ns)
    if len(diffs) == 0 or (diffs <= 0).any():
        raise ValueError("the series needs at least two strictly increasing times")
    values, counts = np.unique(diffs, return_counts=True)
    return int(values[counts.argmax()])


def events(
    frame: pd.DataFrame,
    *,
    mode: TimeMode,
    limit: int | None,
    time_col: str = "time",
    now: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``limit`` events (``None``: one pass over the frame in ``original`` mode, endless
    otherwise). Naive times are taken as UTC. Every column other than ``time_col`` must be
    numeric; values are sent as floats (non-finite values are skipped as rows)."""
    if time_col not in frame.columns:
        raise ValueError(f"the series has no {time_col!r} column")
    columns = [c for c in frame.columns if c != time_col]
    if not columns:
        raise ValueError("the series has no value column")
    times = pd.to_datetime(frame[time_col])
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    times_ns = times.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    values = frame[columns].to_numpy(dtype=np.float64)
    rows = len(frame)
    if mode == "original":
        limit = rows if limit is None else min(limit, rows)
        start_ns, step_ns = 0, 0
    else:
        step_ns = series_step_ns(times)
        if mode == "continue":
            start_ns = int(times_ns[-1]) + step_ns
        else:
            current = int((now or datetime.now(UTC)).timestamp() * 1e9)
            start_ns = current - current % step_ns
    index = 0
    while limit is None or index < limit:
        row = index % rows
        t_ns = int(times_ns[row]) if mode == "original" else start_ns + index * step_ns
        index += 1
        rec = values[row]
        if not all(math.isfinite(v) for v in rec):
            continue
        event: dict[str, Any] = {"time": _iso(t_ns)}
        event.update({name: float(v) for name, v in zip(columns, rec, strict=True)})
        yield event


def _iso(t_ns: int) -> str:
    stamp = pd.Timestamp(t_ns, unit="ns", tz="UTC")
    text = stamp.isoformat().replace("+00:00", "Z")
    return text
