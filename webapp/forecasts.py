"""Running the model and writing its output as response points ``[{"time", "value"}]``.

Two inputs: the window (its full-horizon forecast, computed and encoded once per generation
by :mod:`webapp.snapshot_view`) and a caller's series, which validation has already
validated and regularized; :func:`series_forecast` uses it as it is.

Points are kept encoded (:class:`Predictions`): each step's JSON object once, so a request
for the first ``k`` steps of the window's forecast joins ``k`` prepared fragments instead of
formatting times and floats again. A request for quantiles encodes its points once, with
``"quantiles": {"0.1": v, ...}`` keyed by :func:`webapp.validation.quantile_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np

from forecasting import Forecaster, ForecastingError, Origin
from forecasting.features import FloatArray, IntArray
from webapp.schemas import Point
from webapp.timefmt import format_times
from webapp.validation import check_forecast, quantile_key

__all__ = ["Forecast", "Predictions", "series_forecast", "window_forecast"]

_ENCODE = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class Predictions:
    """A forecast's points, encoded: each point's JSON object (``items``) for a forecast
    whose prefixes are served, or the whole array at once (``array``)."""

    items: tuple[bytes, ...]
    array: bytes | None = None
    count: int = 0

    @classmethod
    def of(cls, times: IntArray, values: FloatArray, step_ns: int) -> Predictions:
        """Each point encoded, for :meth:`first`. NaN and Infinity are not JSON: non-finite
        ``values`` raise ``ValueError`` rather than reach a client (callers refuse them
        before this)."""
        return cls(tuple(_ENCODE(p) for p in _points(times, values, step_ns)))

    @classmethod
    def whole(
        cls,
        times: IntArray,
        values: FloatArray,
        step_ns: int,
        quantiles: dict[str, FloatArray] | None = None,
    ) -> Predictions:
        """All points encoded as one array (one call), for a forecast served once."""
        return cls((), _ENCODE(_points(times, values, step_ns, quantiles)), len(values))

    def __len__(self) -> int:
        return self.count if self.array is not None else len(self.items)

    def first(self, steps: int) -> Predictions:
        """The first ``steps`` points (all of them when there are fewer)."""
        return Predictions(self.items[:steps])

    def json(self) -> msgspec.Raw:
        """The JSON array of the points, to embed in a response as it is."""
        if self.array is not None:
            return msgspec.Raw(self.array)
        return msgspec.Raw(b"[" + b",".join(self.items) + b"]")


def _points(
    times: IntArray,
    values: FloatArray,
    step_ns: int,
    quantiles: dict[str, FloatArray] | None = None,
) -> list[Point]:
    if not np.isfinite(values).all():
        raise ValueError("Out of range float values are not JSON compliant")
    stamps = format_times(times, step_ns)
    if not quantiles:
        return [Point(time=t, value=v) for t, v in zip(stamps, values.tolist(), strict=True)]
    columns = {key: q.tolist() for key, q in quantiles.items()}
    return [
        Point(time=t, value=v, quantiles={key: col[i] for key, col in columns.items()})
        for i, (t, v) in enumerate(zip(stamps, values.tolist(), strict=True))
    ]


@dataclass(frozen=True, slots=True)
class Forecast:
    """A full-horizon forecast from one origin: its points encoded once, the raw output and
    origin that intervals are built from, and the name of the tier that served it."""

    points: Predictions
    times: IntArray
    values: FloatArray
    origin: Origin
    method: str

    def answer(self, model: Forecaster, steps: int, levels: Sequence[float]) -> Predictions:
        """The first ``steps`` points, with the ``levels`` quantiles when any are asked."""
        if not levels:
            return self.points.first(steps)
        return _with_quantiles(model, self.origin, self.times[:steps], self.values[:steps], levels)


def _with_quantiles(
    model: Forecaster,
    origin: Origin,
    times: IntArray,
    values: FloatArray,
    levels: Sequence[float],
) -> Predictions:
    bounds = model.quantiles(origin, values, levels)
    check_forecast(bounds.reshape(-1), model.target)
    keyed = {quantile_key(level): bounds[i] for i, level in enumerate(levels)}
    return Predictions.whole(times, values, model.step_ns, keyed)


def window_forecast(model: Forecaster, origin: Origin) -> Forecast | str:
    """The full-horizon forecast from the window's ``origin``, or why there is none (the
    model fails on it, or its output is not finite: extreme values in the stream)."""
    try:
        with np.errstate(all="ignore"):
            times, values = model.predict(origin, model.horizon)
    except (ForecastingError, ValueError, FloatingPointError) as exc:
        return f"the model cannot forecast this window: {exc}"
    if not np.isfinite(values).all():
        return "the window's forecast is not finite (values too extreme for the model)"
    points = Predictions.of(times, values, model.step_ns)
    return Forecast(points, times, values, origin, model.method(origin))


def series_forecast(
    model: Forecaster,
    times_ns: IntArray,
    values: FloatArray,
    steps: int,
    levels: Sequence[float] = (),
) -> tuple[Predictions, str]:
    """The next ``steps`` points after a caller's series and the tier that served them.

    The series is the one validation returned: regular, at least ``model.min_rows`` long, so
    its origin is built directly, with no second regularization. A forecast that overflows
    raises the 422 of :func:`webapp.validation.check_forecast`.
    """
    # Extreme finite values may overflow inside the model: refused by check_forecast.
    with np.errstate(over="ignore", invalid="ignore"):
        origin = model.origin(values, int(times_ns[-1]))
        times, forecast = model.predict(origin, steps)
        check_forecast(forecast, model.target)
        if levels:
            return _with_quantiles(model, origin, times, forecast, levels), model.method(origin)
    return Predictions.whole(times, forecast, model.step_ns), model.method(origin)
