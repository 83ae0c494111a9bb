"""The gap and NaN policy: series put on their calendar's regular grid.

A missing step is a grid time with no row, or a row whose value is NaN (the two are the
same thing). Runs of at most ``max_gap_steps`` missing steps are filled by linear
interpolation between their neighbours. A longer run either splits the series into segments
(training: each segment is used on its own, no feature row spans the gap) or is refused with
an :class:`IrregularSeriesError` naming the series, the time after which the gap starts and
its length (a caller's history, and training with ``--gaps refuse``). Leading and trailing
NaN are dropped. Times off the calendar are always refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from forecasting.errors import IrregularSeriesError
from forecasting.frequency import Frequency

__all__ = ["GapPolicy", "Segment", "regularize", "segments"]

GapPolicy = Literal["split", "refuse"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of one series on its regular grid, with no missing value left."""

    series: str
    times: IntArray
    values: FloatArray

    def __len__(self) -> int:
        return len(self.values)


def _as_frequency(frequency: Frequency | int) -> Frequency:
    return frequency if isinstance(frequency, Frequency) else Frequency.fixed(frequency)


def regularize(
    times_ns: IntArray, values: FloatArray, frequency: Frequency | int, *, max_gap_steps: int = 0
) -> tuple[IntArray, FloatArray]:
    """Put a sorted, unique, finite series on its grid; refuse any gap beyond the bound.

    ``frequency`` is a :class:`Frequency` or a fixed step in nanoseconds. Returns the inputs
    unchanged (no copy) when they are already regular, the common case. Raises
    :class:`IrregularSeriesError` whose ``position`` is the first offending row.
    """
    t = np.asarray(times_ns, dtype=np.int64)
    if len(t) < 2:
        return t, values
    freq = _as_frequency(frequency)
    step = freq.step_ns
    if step is not None and np.all(np.diff(t) == step):
        return t, values
    pos = freq.positions(t)
    missing = np.diff(pos) - 1
    if not missing.any():
        return t, values
    too_long = np.flatnonzero(missing > max_gap_steps)
    if len(too_long):
        i = int(too_long[0])
        raise IrregularSeriesError(
            f"gap of {int(missing[i])} missing step(s) after row {i} exceeds the allowed "
            f"{max_gap_steps} (step {_step_text(freq)})",
            i + 1,
        )
    return _fill(t, values, pos, freq)


def _fill(
    t: IntArray, values: FloatArray, pos: IntArray, freq: Frequency
) -> tuple[IntArray, FloatArray]:
    grid = freq.grid(int(t[0]), int(t[-1]))
    filled = np.interp(np.arange(len(grid), dtype=np.float64), pos.astype(np.float64), values)
    return grid, filled.astype(np.float64, copy=False)


def segments(
    times_ns: IntArray,
    values: FloatArray,
    frequency: Frequency,
    *,
    max_gap_steps: int,
    policy: GapPolicy = "split",
    series: str = "",
) -> list[Segment]:
    """Apply the policy to one series (sorted, unique times; NaN values are missing steps).

    Returns its segments, oldest first (one when no gap exceeds ``max_gap_steps``).
    """
    t = np.asarray(times_ns, dtype=np.int64)
    v = np.asarray(values, dtype=np.float64)
    known = np.isfinite(v)
    if not known.any():
        return []
    pos = frequency.positions(t)
    t, v, pos = t[known], v[known], pos[known]
    missing = np.diff(pos) - 1
    breaks = np.flatnonzero(missing > max_gap_steps)
    if len(breaks) and policy == "refuse":
        i = int(breaks[0])
        raise IrregularSeriesError(
            f"series {series!r}: gap of {int(missing[i])} missing {_step_text(frequency)} "
            f"step(s) after {_iso(int(t[i]))} exceeds the interpolation bound of "
            f"{max_gap_steps} (use --gaps split to train on the segments)",
            i + 1,
        )
    out: list[Segment] = []
    for start, stop in zip(
        np.concatenate([[0], breaks + 1]), np.concatenate([breaks + 1, [len(t)]]), strict=True
    ):
        seg_t, seg_v, seg_pos = t[start:stop], v[start:stop], pos[start:stop]
        if len(seg_t) > 1 and (np.diff(seg_pos) > 1).any():
            seg_t, seg_v = _fill(seg_t, seg_v, seg_pos - seg_pos[0], frequency)
        out.append(Segment(series, seg_t, seg_v))
    return out


def _step_text(freq: Frequency) -> str:
    step = freq.step_ns
    if step is None:
        return freq.alias
    seconds = step / 1e9
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


def _iso(ns: int) -> str:
    return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="s")) + "Z"
