"""Running the model and writing its output as response points ``[{"time", "value"}]``.

Two inputs: the window (its full-horizon forecast, computed once per generation by
:mod:`webapp.snapshot_view`) and a caller's series, which :func:`webapp.validation.parse_predict`
has already validated and regularized; :func:`series_points` uses it as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from forecasting import Forecaster, ForecastingError, Origin
from forecasting.features import FloatArray, IntArray, origin_row
from webapp.timefmt import format_times
from webapp.validation import check_forecast

__all__ = ["Points", "series_points", "window_points"]

Points = list[dict[str, Any]]


def _points(model: Forecaster, times: IntArray, values: FloatArray) -> Points:
    stamps = format_times(times, model.spec.step_ns)
    return [{"time": t, "value": v} for t, v in zip(stamps, values.tolist(), strict=True)]


def window_points(model: Forecaster, origin: Origin) -> Points | str:
    """The full-horizon forecast from the window's ``origin``, or why there is none (the
    model fails on it, or its output is not finite: extreme values in the stream)."""
    try:
        with np.errstate(all="ignore"):
            times, values = model.predict(origin, model.horizon)
    except (ForecastingError, ValueError, FloatingPointError) as exc:
        return f"the model cannot forecast this window: {exc}"
    if not np.isfinite(values).all():
        return "the window's forecast is not finite (values too extreme for the model)"
    return _points(model, times, values)


def series_points(model: Forecaster, times_ns: IntArray, values: FloatArray, steps: int) -> Points:
    """The next ``steps`` points after a caller's series.

    The series is the one validation returned: regular, at least ``model.min_rows`` long, so
    its origin row is built directly, with no second regularization. A forecast that
    overflows raises the 422 of :func:`webapp.validation.check_forecast`.
    """
    last = int(times_ns[-1])
    origin = Origin(row=origin_row(values, last, model.spec), last_time_ns=last)
    # Extreme finite values may overflow inside the model: refused by check_forecast.
    with np.errstate(over="ignore", invalid="ignore"):
        times, forecast = model.predict(origin, steps)
    check_forecast(forecast, model.target)
    return _points(model, times, forecast)
