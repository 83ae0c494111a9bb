"""Feature construction: scale-free lags plus the calendar terms a frequency implies.

Everything is numpy on ``int64`` nanosecond UTC times and ``float64`` values, so training and
the web workers compute identical features.

A forecast *origin* is the point after the last observed step. Its ``lags`` most recent values
are normalized by the series' recent level and scale (:func:`normalize`): ``z = (y - level) /
scale``, with ``level`` the mean of the last season (at most ``lags`` values) and ``scale``
their standard deviation. Targets are normalized the same way, so one model serves series of
any magnitude (a global model), and its output is mapped back with the origin's own level and
scale.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from forecasting.frequency import NS_PER_DAY, Frequency

__all__ = [
    "NS_PER_DAY",
    "FloatArray",
    "IntArray",
    "calendar_terms",
    "lag_windows",
    "n_calendar",
    "normalize",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_NS_PER_WEEK = 7 * NS_PER_DAY
# 1970-01-01 was a Thursday; shifting by 3 days makes the weekly phase start on Monday 00:00.
_MONDAY_SHIFT_NS = 3 * NS_PER_DAY
_YEAR_NS = 365.2425 * NS_PER_DAY


def _phases(times_ns: IntArray, freq: Frequency) -> list[tuple[FloatArray, int]]:
    """The cyclic phases (in [0, 1)) a frequency implies, each with its Fourier order."""
    t = np.asarray(times_ns, dtype=np.int64)
    week = ((t + _MONDAY_SHIFT_NS) % _NS_PER_WEEK) / _NS_PER_WEEK
    kind = freq.kind
    per_day = freq.steps_per_day()
    if kind == "tick" and per_day > 1:
        return [((t % NS_PER_DAY) / NS_PER_DAY, 3), (week, 2)]
    if kind == "tick":
        return [(week, 3)] if per_day == 1 else []
    if kind == "business":
        weekday = ((t // NS_PER_DAY + 3) % 7).astype(np.float64)
        return [(np.minimum(weekday, 4.0) / 5.0, 2)]
    if kind == "week":
        return [((t % int(_YEAR_NS)) / _YEAR_NS, 3)]
    month = (t.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64) % 12) / 12.0
    return {"month": [(month, 4)], "quarter": [(month, 2)]}.get(kind, [])


def n_calendar(freq: Frequency) -> int:
    """How many calendar columns :func:`calendar_terms` gives for ``freq``."""
    return sum(2 * order for _, order in _phases(np.zeros(1, dtype=np.int64), freq))


def calendar_terms(times_ns: IntArray, freq: Frequency) -> FloatArray:
    """Fourier terms (sin, cos of each harmonic) of the phases ``freq`` implies, shape
    ``(len(times_ns), n_calendar(freq))``."""
    columns: list[FloatArray] = []
    for phase, order in _phases(times_ns, freq):
        for k in range(1, order + 1):
            angle = 2.0 * np.pi * k * phase
            columns.append(np.sin(angle))
            columns.append(np.cos(angle))
    if not columns:
        return np.zeros((len(times_ns), 0), dtype=np.float64)
    return np.stack(columns, axis=-1).astype(np.float64, copy=False)


def lag_windows(values: FloatArray, origins: IntArray, lags: int) -> FloatArray:
    """Row ``i`` is ``values[origins[i] - lags : origins[i]]``, oldest first."""
    index = origins[:, None] - lags + np.arange(lags, dtype=np.int64)[None, :]
    windows: FloatArray = np.asarray(values, dtype=np.float64)[index]
    return windows


def normalize(windows: FloatArray, season: int) -> tuple[FloatArray, FloatArray]:
    """``(level, scale)`` of each row of ``windows`` (see the module docstring).

    A flat window (standard deviation below 1e-9 of its level) takes a millionth of
    ``max(|level|, 1)`` as its scale: a constant series is forecast as itself (the model's
    normalized output barely moves it) rather than divided by zero.
    """
    width = max(1, min(season, windows.shape[1]))
    level = windows[:, -width:].mean(axis=1)
    scale = windows.std(axis=1)
    flat = scale <= 1e-9 * np.maximum(np.abs(level), 1.0)
    scale = np.where(flat, 1e-6 * np.maximum(np.abs(level), 1.0), scale)
    return level, scale
