"""Running the model and writing its output as response points ``[{"time", "value"}]``.

Two inputs: the window (its full-horizon forecast, computed and encoded once per generation
by :mod:`webapp.snapshot_view`) and a caller's series, which validation has already
validated and regularized; :func:`series_points` uses it as it is.

Points are kept encoded (:class:`Predictions`): the JSON array once, with where each point
ends in it, so a request for the first ``k`` steps of a series' forecast takes one slice of
it instead of formatting times and floats again.
"""

from __future__ import annotations

import itertools
from array import array
from dataclasses import dataclass

import msgspec
import numpy as np

from forecasting import Forecaster, ForecastingError, Origin
from forecasting.features import FloatArray, IntArray, origin_row
from webapp.schemas import Point
from webapp.timefmt import format_times
from webapp.validation import check_forecast

__all__ = ["Predictions", "series_points", "window_points"]

_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Predictions:
    """A forecast's points, encoded as one JSON array (``encoded``) of ``count`` points. For a
    forecast whose prefixes are served (:meth:`of`), ``ends[k - 1]`` is where the ``k``-th
    point ends in ``encoded``, so the first ``k`` points are one slice of it. One bytes object
    and a small integer array per forecast: about 3 KB for 48 points, which is what a
    worker's memo of series forecasts holds per series."""

    encoded: bytes
    count: int
    ends: array[int] | None = None

    @classmethod
    def of(cls, times: IntArray, values: FloatArray, step_ns: int) -> Predictions:
        """Each point encoded, for :meth:`first`. NaN and Infinity are not JSON: non-finite
        ``values`` raise ``ValueError`` rather than reach a client (callers refuse them
        before this)."""
        items = [_ENCODE(p) for p in _points(times, values, step_ns)]
        ends = array("I", itertools.accumulate(len(item) + 1 for item in items))
        return cls(b"[" + b",".join(items) + b"]", len(items), ends)

    @classmethod
    def whole(cls, times: IntArray, values: FloatArray, step_ns: int) -> Predictions:
        """All points encoded as one array (one call), for a forecast served once."""
        return cls(_ENCODE(_points(times, values, step_ns)), len(values))

    def __len__(self) -> int:
        return self.count

    def first(self, steps: int) -> Predictions:
        """The first ``steps`` points (all of them when there are fewer); only for a
        forecast made by :meth:`of`."""
        if self.ends is None:
            raise ValueError("only a forecast made by Predictions.of serves its prefixes")
        steps = max(0, min(steps, self.count))
        if steps == self.count:
            return Predictions(self.encoded, steps)
        if steps == 0:
            return Predictions(b"[]", 0)
        return Predictions(self.encoded[: self.ends[steps - 1]] + b"]", steps)

    def json(self) -> msgspec.Raw:
        """The JSON array of the points, to embed in a response as it is."""
        return msgspec.Raw(self.encoded)


def _points(times: IntArray, values: FloatArray, step_ns: int) -> list[Point]:
    if not np.isfinite(values).all():
        raise ValueError("Out of range float values are not JSON compliant")
    stamps = format_times(times, step_ns)
    return [Point(time=t, value=v) for t, v in zip(stamps, values.tolist(), strict=True)]


def window_points(model: Forecaster, origin: Origin) -> Predictions | str:
    """The full-horizon forecast from the window's ``origin``, or why there is none (the
    model fails on it, or its output is not finite: extreme values in the stream)."""
    try:
        with np.errstate(all="ignore"):
            times, values = model.predict(origin, model.horizon)
    except (ForecastingError, ValueError, FloatingPointError) as exc:
        return f"the model cannot forecast this window: {exc}"
    if not np.isfinite(values).all():
        return "the window's forecast is not finite (values too extreme for the model)"
    return Predictions.of(times, values, model.spec.step_ns)


def series_points(
    model: Forecaster, times_ns: IntArray, values: FloatArray, steps: int
) -> Predictions:
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
    return Predictions.whole(times, forecast, model.spec.step_ns)
