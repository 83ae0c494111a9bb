"""Running the model and writing its output as response points ``[{"time", "value"}]``.

Two inputs: the window (its full-horizon forecast, computed and encoded once per generation
by :mod:`webapp.snapshot_view`) and a caller's series, which validation has already
validated and regularized; :func:`series_forecast` uses it as it is.

Points are kept encoded (:class:`Predictions`): the JSON array once, with where each point
ends in it, so a request for the first ``k`` steps of a series' forecast takes one slice of
it instead of formatting times and floats again. A request for quantiles encodes its points
once, with ``"quantiles": {"0.1": v, ...}`` keyed by :func:`webapp.validation.quantile_key`.
"""

from __future__ import annotations

import itertools
from array import array
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
    def whole(
        cls,
        times: IntArray,
        values: FloatArray,
        step_ns: int,
        quantiles: dict[str, FloatArray] | None = None,
    ) -> Predictions:
        """All points encoded as one array (one call), for a forecast served once."""
        return cls(_ENCODE(_points(times, values, step_ns, quantiles)), len(values))

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
    what intervals need (the serving tier and the origin's scale), and the tier's name."""

    points: Predictions
    times: IntArray
    values: FloatArray
    tier: int
    scale: float
    method: str

    def answer(self, model: Forecaster, steps: int, levels: Sequence[float]) -> Predictions:
        """The first ``steps`` points, with the ``levels`` quantiles when any are asked."""
        if not levels:
            return self.points.first(steps)
        times, values = self.times[:steps], self.values[:steps]
        return _with_quantiles(
            model, tier=self.tier, scale=self.scale, times=times, values=values, levels=levels
        )


def _with_quantiles(
    model: Forecaster,
    *,
    tier: int,
    scale: float,
    times: IntArray,
    values: FloatArray,
    levels: Sequence[float],
) -> Predictions:
    bounds = model.quantiles(tier, scale, values, levels)
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
    return Forecast(points, times, values, origin.tier, origin.scale, model.method(origin))


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
        method = model.method(origin)
        if levels:
            points = _with_quantiles(
                model,
                tier=origin.tier,
                scale=origin.scale,
                times=times,
                values=forecast,
                levels=levels,
            )
            return points, method
    return Predictions.whole(times, forecast, model.step_ns), method
