"""Turn the sample series into the project's Kafka events (pure functions, no I/O).

An event is one JSON object per record: ``{"time": "<ISO-8601 UTC with Z>", "<column>": <float>}``.
Three time modes:

- ``original``: the series' own times, in order (the same rows as the snapshot);
- ``continue``: the rows again, cycled, with times that carry on after the last row of the
  series at the series' own step (the series spans whole weeks, so cycling keeps its weekly
  shape); this is what a live feed after the bootstrap snapshot looks like;
- ``now``: like ``continue`` but starting at the current time rounded down to the step.

With keys (:func:`keyed_events`), each time step carries one event per series, keyed by the
series id; the series are the sample with different phases.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "SERIES_SHIFT",
    "TIME_MODES",
    "TimeMode",
    "events",
    "keyed_events",
    "series_ids",
    "series_step_ns",
]

TimeMode = Literal["original", "continue", "now"]
TIME_MODES: tuple[TimeMode, ...] = ("original", "continue", "now")
# Rows between the values of one keyed series and the next (see keyed_events).
SERIES_SHIFT = 17


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
    for _, event in keyed_events(frame, mode=mode, limit=limit, time_col=time_col, now=now):
        yield event


def series_ids(count: int) -> list[str]:
    """The ids of ``count`` keyed series: ``series-0001`` ... (at least four digits)."""
    width = max(4, len(str(count)))
    return [f"series-{n:0{width}d}" for n in range(1, count + 1)]


def keyed_events(
    frame: pd.DataFrame,
    *,
    mode: TimeMode,
    limit: int | None,
    series: int = 0,
    time_col: str = "time",
    now: datetime | None = None,
) -> Iterator[tuple[bytes | None, dict[str, Any]]]:
    """``(key, event)`` pairs: with ``series=0`` the events of :func:`events` without a key;
    else, for each time step, one event per series of :func:`series_ids`, keyed by its id
    (UTF-8). Series ``k`` (counting from 0) takes its values ``k * SERIES_SHIFT`` rows further
    into the frame, cycling, so the series differ but keep the sample's shape. ``limit``
    counts events (``None``: one pass over the frame per series in ``original`` mode,
    endless otherwise); a value that is not finite skips that series' event."""
    if time_col not in frame.columns:
        raise ValueError(f"the series has no {time_col!r} column")
    if series < 0:
        raise ValueError(f"the number of series must be >= 0, got {series}")
    columns = [c for c in frame.columns if c != time_col]
    if not columns:
        raise ValueError("the series has no value column")
    times = pd.to_datetime(frame[time_col])
    if times.dt.tz is None:
        times = times.dt.tz_localize("UTC")
    times_ns = times.dt.tz_convert("UTC").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    values = frame[columns].to_numpy(dtype=np.float64)
    rows = len(frame)
    keys: list[bytes | None] = [sid.encode() for sid in series_ids(series)] or [None]
    if mode == "original":
        steps = rows if limit is None else min(-(-limit // len(keys)), rows)
        start_ns, step_ns = 0, 0
    else:
        steps = None
        step_ns = series_step_ns(times)
        if mode == "continue":
            start_ns = int(times_ns[-1]) + step_ns
        else:
            current = int((now or datetime.now(UTC)).timestamp() * 1e9)
            start_ns = current - current % step_ns
    index = sent = 0
    while (steps is None or index < steps) and (limit is None or sent < limit):
        row = index % rows
        t_ns = int(times_ns[row]) if mode == "original" else start_ns + index * step_ns
        stamp = _iso(t_ns)
        for k, key in enumerate(keys):
            if limit is not None and sent >= limit:
                break
            rec = values[(row + k * SERIES_SHIFT) % rows]
            if not all(math.isfinite(v) for v in rec):
                continue
            event: dict[str, Any] = {"time": stamp}
            event.update({name: float(v) for name, v in zip(columns, rec, strict=True)})
            sent += 1
            yield key, event
        index += 1


def _iso(t_ns: int) -> str:
    stamp = pd.Timestamp(t_ns, unit="ns", tz="UTC")
    text = stamp.isoformat().replace("+00:00", "Z")
    return text
