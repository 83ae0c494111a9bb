"""The forecaster: a scikit-learn ``Ridge`` on standardized lag + calendar features.

Multi-step forecasts are *direct*: one multi-output estimator predicts every step of the
horizon from the origin row at once, so a request costs one ``predict`` call whatever its
length, and no forecast is fed back into the features.

Thread/fork safety: a fitted :class:`Forecaster` is read-only; ``predict`` may be called
from any thread. Load it in the process that uses it (after fork), never in a preloading
master, so BLAS thread pools are created per worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from forecasting.errors import TooFewRowsError
from forecasting.features import (
    FeatureSpec,
    FloatArray,
    IntArray,
    origin_row,
    regularize,
    training_set,
)

__all__ = ["Forecaster", "Origin", "fit"]


@dataclass(frozen=True, slots=True)
class Origin:
    """A prepared forecast origin: the feature row and the time of the last observation.

    Built once per series (per shm generation in the web workers) by
    :meth:`Forecaster.prepare`; cheap to predict from many times.
    """

    row: FloatArray
    last_time_ns: int


@dataclass(frozen=True, slots=True)
class _Standardized:
    """``Pipeline(StandardScaler, Ridge).predict`` without scikit-learn's per-call input
    validation: the same array operations in the same order (``X -= mean``, ``X /= scale``,
    ``X @ coef.T + intercept``), so the output is bit for bit the pipeline's."""

    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: FloatArray

    @staticmethod
    def of(estimator: object) -> _Standardized | None:
        """The fitted arrays of a default ``Pipeline(StandardScaler, Ridge)``, else None."""
        if not isinstance(estimator, Pipeline) or len(estimator.steps) != 2:
            return None
        scaler, ridge = estimator.steps[0][1], estimator.steps[1][1]
        if not isinstance(scaler, StandardScaler) or not isinstance(ridge, Ridge):
            return None
        if not (scaler.with_mean and scaler.with_std) or not hasattr(ridge, "coef_"):
            return None
        if scaler.scale_ is None or np.ndim(ridge.coef_) != 2:
            return None
        return _Standardized(
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=np.asarray(scaler.scale_, dtype=np.float64),
            coef=np.asarray(ridge.coef_),
            intercept=np.asarray(ridge.intercept_),
        )

    def predict(self, row: FloatArray) -> FloatArray:
        x = np.array(row, dtype=np.float64, order="C")  # a copy, as the scaler makes
        x -= self.mean
        x /= self.scale
        out: FloatArray = x @ self.coef.T + self.intercept
        return out


@dataclass(frozen=True, slots=True)
class Forecaster:
    """A fitted model plus everything needed to use it on a new series.

    The estimator's arrays are read once (``_direct``): a prediction is then a few array
    operations rather than a pass through scikit-learn's input checks, with the same result.
    """

    spec: FeatureSpec
    estimator: Pipeline
    target: str
    version: str
    _direct: _Standardized | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_direct", _Standardized.of(self.estimator))

    @property
    def min_rows(self) -> int:
        return self.spec.min_rows

    @property
    def horizon(self) -> int:
        return self.spec.horizon

    def prepare(self, times_ns: IntArray, values: FloatArray, *, max_gap_steps: int = 0) -> Origin:
        """Regularize a sorted, unique series and build its origin row.

        Raises :class:`~forecasting.errors.IrregularSeriesError` or
        :class:`~forecasting.errors.TooFewRowsError` for series the model cannot use.
        """
        t, v = regularize(times_ns, values, self.spec.step_ns, max_gap_steps=max_gap_steps)
        if len(v) < self.spec.min_rows:
            raise TooFewRowsError(self.spec.min_rows, len(v))
        tail = np.asarray(v[-self.spec.min_rows :], dtype=np.float64)
        last = int(t[-1])
        return Origin(row=origin_row(tail, last, self.spec), last_time_ns=last)

    def predict(self, origin: Origin, steps: int) -> tuple[IntArray, FloatArray]:
        """Times and values of the next ``steps`` points (1 <= steps <= horizon)."""
        if not 1 <= steps <= self.spec.horizon:
            raise ValueError(f"steps must be between 1 and {self.spec.horizon}, got {steps}")
        if self._direct is not None:
            output = self._direct.predict(origin.row)
        else:
            output = np.asarray(self.estimator.predict(origin.row), dtype=np.float64)
        values = output[0, :steps]
        times = origin.last_time_ns + self.spec.step_ns * np.arange(1, steps + 1, dtype=np.int64)
        return times, values


def fit(
    times_ns: IntArray,
    values: FloatArray,
    spec: FeatureSpec,
    *,
    target: str,
    alpha: float = 1.0,
    trained_at: datetime | None = None,
) -> Forecaster:
    """Fit a forecaster on a regular series (see :func:`forecasting.features.regularize`)."""
    x, y = training_set(times_ns, values, spec)
    estimator = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=alpha))])
    estimator.fit(x, y)
    stamp = (trained_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    version = f"ridge-direct-l{spec.min_rows}-h{spec.horizon}-{stamp}"
    return Forecaster(spec=spec, estimator=estimator, target=target, version=version)
