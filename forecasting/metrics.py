"""Accuracy measures shared by the backtest and the accuracy harness (``scripts.accuracy``).

Forecasts are scored from *origins*: origin ``o`` of a series forecasts its rows
``o .. o + horizon - 1`` from the rows before ``o``. Per series, forecasts and actual values
are arrays ``(origins, horizon)``; a measure over several series takes one array per series.

* MAE: the mean absolute error over every step of every origin of every series.
* MASE: per series, its MAE divided by :func:`mase_scale` of the rows before its first scored
  origin; then the mean over series (so each series weighs the same, whatever its magnitude).
* Coverage: the share of actual values inside ``[low, high]``, over every step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from forecasting.features import FloatArray, IntArray

__all__ = ["coverage", "mae", "mase", "mase_scale", "naive_forecasts"]


def mase_scale(values: FloatArray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast one step ahead (lag of one season; the
    plain last value when the rows do not span a season), 1 for a flat or one-row history."""
    m = season if len(values) > season else 1
    if len(values) <= m:
        return 1.0
    scale = float(np.mean(np.abs(values[m:] - values[:-m])))
    return scale if scale > 0 else 1.0


def naive_forecasts(values: FloatArray, origins: IntArray, horizon: int, period: int) -> FloatArray:
    """``(origins, horizon)`` forecasts repeating the last ``period`` values before each origin
    (period 1: naive, one season: seasonal naive)."""
    h = np.arange(horizon, dtype=np.int64)
    index = origins[:, None] - period + (h[None, :] % period)
    out: FloatArray = np.asarray(values, dtype=np.float64)[index]
    return out


def mae(actual: Sequence[FloatArray], forecast: Sequence[FloatArray]) -> float:
    """Mean absolute error over every value of every series."""
    errors = [np.abs(a - f).reshape(-1) for a, f in zip(actual, forecast, strict=True)]
    return float(np.mean(np.concatenate(errors)))


def mase(
    actual: Sequence[FloatArray], forecast: Sequence[FloatArray], scales: Sequence[float]
) -> float:
    """Mean over series of each series' MAE divided by its scale (:func:`mase_scale`)."""
    per_series = [
        float(np.mean(np.abs(a - f))) / s for a, f, s in zip(actual, forecast, scales, strict=True)
    ]
    return float(np.mean(per_series))


def coverage(
    actual: Sequence[FloatArray], low: Sequence[FloatArray], high: Sequence[FloatArray]
) -> float:
    """Share of actual values within ``[low, high]`` over every value of every series."""
    inside = [
        ((a >= lo) & (a <= hi)).reshape(-1) for a, lo, hi in zip(actual, low, high, strict=True)
    ]
    return float(np.mean(np.concatenate(inside)))
