"""Feature construction: lagged values plus calendar (Fourier) terms, all in UTC.

Everything here is pure numpy on ``int64`` nanosecond UTC timestamps and ``float64`` values,
so the daemon, the training command and the web workers compute identical features.

The model is *direct multi-output*: one feature row describes a forecast origin (the last
observed step) and the estimator predicts all ``horizon`` future steps at once. A row holds
``values[-lag]`` for every lag in ``spec.lags`` followed by the calendar terms of the origin
time (the calendar of step ``h`` is a fixed shift of the origin's, which the per-horizon
coefficients absorb).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from forecasting.errors import IrregularSeriesError, TooFewRowsError

__all__ = [
    "NS_PER_DAY",
    "FeatureSpec",
    "calendar_terms",
    "origin_row",
    "regularize",
    "training_set",
]

NS_PER_DAY = 86_400 * 1_000_000_000
_NS_PER_WEEK = 7 * NS_PER_DAY
# 1970-01-01 was a Thursday; shifting by 3 days makes the weekly phase start on Monday 00:00.
_MONDAY_SHIFT_NS = 3 * NS_PER_DAY

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """What a model needs from a series.

    ``lags`` are positive step counts (1 = the last observed value); ``step_ns`` is the
    series' regular spacing; ``daily_order``/``weekly_order`` are the numbers of Fourier
    harmonics of the UTC time of day and time of week.
    """

    lags: tuple[int, ...]
    step_ns: int
    horizon: int
    daily_order: int = 3
    weekly_order: int = 2
    # ``lags`` as an array, made once: every origin row indexes with it.
    lag_index: IntArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.lags or min(self.lags) < 1:
            raise ValueError("lags must be a non-empty tuple of positive integers")
        if self.step_ns <= 0 or self.horizon < 1:
            raise ValueError("step_ns and horizon must be positive")
        lag_index = np.asarray(self.lags, dtype=np.int64)
        lag_index.flags.writeable = False
        object.__setattr__(self, "lag_index", lag_index)

    @property
    def min_rows(self) -> int:
        """Rows of history needed to build one origin row."""
        return max(self.lags)

    @property
    def n_features(self) -> int:
        return len(self.lags) + 2 * (self.daily_order + self.weekly_order)


def calendar_terms(times_ns: IntArray, spec: FeatureSpec) -> FloatArray:
    """Fourier terms of UTC time of day and of week, shape ``(len(times_ns), 2*(d+w))``."""
    t = np.asarray(times_ns, dtype=np.int64)
    day_phase = (t % NS_PER_DAY) / NS_PER_DAY
    week_phase = ((t + _MONDAY_SHIFT_NS) % _NS_PER_WEEK) / _NS_PER_WEEK
    columns: list[FloatArray] = []
    for phase, order in ((day_phase, spec.daily_order), (week_phase, spec.weekly_order)):
        for k in range(1, order + 1):
            angle = 2.0 * np.pi * k * phase
            columns.append(np.sin(angle))
            columns.append(np.cos(angle))
    return np.stack(columns, axis=-1).astype(np.float64, copy=False)


def origin_row(values: FloatArray, origin_time_ns: int, spec: FeatureSpec) -> FloatArray:
    """The ``(1, n_features)`` row for forecasting after the last element of ``values``.

    ``values`` must be on the regular grid (see :func:`regularize`), oldest first.
    Raises :class:`TooFewRowsError` when it is shorter than ``spec.min_rows``.
    """
    if len(values) < spec.min_rows:
        raise TooFewRowsError(spec.min_rows, len(values))
    lagged = np.asarray(values, dtype=np.float64)[len(values) - spec.lag_index]
    cal = _origin_calendar(origin_time_ns % _NS_PER_WEEK, spec)
    return np.concatenate([lagged, cal]).reshape(1, -1)


@lru_cache(maxsize=4096)
def _origin_calendar(week_ns: int, spec: FeatureSpec) -> FloatArray:
    """:func:`calendar_terms` of one time, from its offset in the week. Both phases are
    functions of that offset (a week is whole days; the Monday shift is applied to it the
    same way), so the terms are those of the time itself, computed once per phase."""
    terms: FloatArray = calendar_terms(np.array([week_ns], dtype=np.int64), spec)[0]
    terms.flags.writeable = False
    return terms


def training_set(
    times_ns: IntArray, values: FloatArray, spec: FeatureSpec
) -> tuple[FloatArray, FloatArray]:
    """``(X, Y)`` for every origin with full lags and a full horizon after it.

    Row ``i`` of ``X`` describes origin ``o`` (history ``values[:o]``); row ``i`` of ``Y`` is
    ``values[o:o+horizon]``. Inputs must already be regular.
    """
    n = len(values)
    origins = np.arange(spec.min_rows, n - spec.horizon + 1, dtype=np.int64)
    if len(origins) == 0:
        raise TooFewRowsError(spec.min_rows + spec.horizon, n)
    lags = np.asarray(spec.lags, dtype=np.int64)
    lagged = values[origins[:, None] - lags[None, :]]
    cal = calendar_terms(times_ns[origins - 1], spec)
    x = np.hstack([lagged, cal])
    y = values[origins[:, None] + np.arange(spec.horizon)[None, :]]
    return x.astype(np.float64, copy=False), y.astype(np.float64, copy=False)


def regularize(
    times_ns: IntArray, values: FloatArray, step_ns: int, *, max_gap_steps: int = 0
) -> tuple[IntArray, FloatArray]:
    """Put a sorted, unique series on its regular grid.

    Every spacing must be a whole multiple of ``step_ns``; runs of up to ``max_gap_steps``
    missing steps are filled by linear interpolation. Raises :class:`IrregularSeriesError`
    naming the first offending position otherwise. Returns the inputs unchanged (no copy)
    when they are already regular, which is the common case.
    """
    t = np.asarray(times_ns, dtype=np.int64)
    if len(t) < 2:
        return t, values
    diffs = np.diff(t)
    if np.all(diffs == step_ns):
        return t, values
    bad = np.flatnonzero((diffs <= 0) | (diffs % step_ns != 0))
    if len(bad):
        i = int(bad[0])
        raise IrregularSeriesError(
            f"spacing between rows {i} and {i + 1} is {_fmt_ns(int(diffs[i]))}, "
            f"not a multiple of the model's step {_fmt_ns(step_ns)}",
            i + 1,
        )
    missing = diffs // step_ns - 1
    too_long = np.flatnonzero(missing > max_gap_steps)
    if len(too_long):
        i = int(too_long[0])
        raise IrregularSeriesError(
            f"gap of {int(missing[i])} missing step(s) after row {i} exceeds the allowed "
            f"{max_gap_steps} (step {_fmt_ns(step_ns)})",
            i + 1,
        )
    grid = np.arange(t[0], t[-1] + step_ns, step_ns, dtype=np.int64)
    filled = np.interp(grid.astype(np.float64), t.astype(np.float64), values)
    return grid, filled.astype(np.float64, copy=False)


def _fmt_ns(ns: int) -> str:
    seconds = ns / 1e9
    if seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"
