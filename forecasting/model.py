"""The forecaster: one global, scale-free model per lag depth ("tier"), direct multi-step.

Each :class:`Tier` maps the normalized last ``lags`` values of a series plus calendar terms
(:mod:`forecasting.features`) to the normalized next ``horizon`` values, either with a
multi-output ``Ridge`` (one row per origin) or a ``HistGradientBoostingRegressor`` (one row
per origin and horizon step, the step and its calendar as features). Tiers are trained
together: the deepest serves histories that cover its lags, shallower ones serve shorter
histories down to the least one (:attr:`Forecaster.min_rows`). Each tier keeps the scaled
out-of-sample residuals of its backtest, per horizon step: conformal intervals.

Thread/fork safety: a fitted :class:`Forecaster` is read-only; ``predict`` may be called
from any thread. Load it in the process that uses it (after fork), never in a preloading
master, so thread pools are created per worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from forecasting.errors import TooFewRowsError
from forecasting.features import (
    FloatArray,
    IntArray,
    calendar_terms,
    lag_windows,
    normalize,
)
from forecasting.frequency import Frequency
from forecasting.gaps import Segment, segments

__all__ = [
    "Estimator",
    "Forecaster",
    "ModelKind",
    "Origin",
    "Tier",
    "conformal_quantiles",
    "design",
    "fit_tier",
]

ModelKind = Literal["ridge", "hgb"]
Estimator: TypeAlias = Pipeline | HistGradientBoostingRegressor
# Gradient boosting trains on one row per origin and step: at most this many, sampled.
_HGB_MAX_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class Origin:
    """A prepared forecast origin: the tier that serves it, its feature rows, the level and
    scale that map normalized output back, and the time of the last observation."""

    tier: int
    rows: FloatArray
    level: float
    scale: float
    last_time_ns: int


@dataclass(frozen=True, slots=True)
class _Standardized:
    """``Pipeline(StandardScaler, Ridge).predict`` without scikit-learn's per-call input
    validation: the same array operations in the same order, so the output is bit for bit
    the pipeline's."""

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
class Tier:
    """One lag depth: its estimator and its sorted scaled residuals ``(n, horizon)``."""

    lags: int
    kind: ModelKind
    estimator: Estimator
    residuals: FloatArray
    _direct: _Standardized | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_direct", _Standardized.of(self.estimator))

    @property
    def method(self) -> str:
        return f"{self.kind}-l{self.lags}"

    def predict_normalized(self, rows: FloatArray, horizon: int) -> FloatArray:
        """Normalized forecasts: ``(origins, horizon)`` from Ridge rows, or from gradient
        boosting's ``origins * horizon`` rows (origin-major)."""
        if self._direct is not None:
            return self._direct.predict(rows)
        out = np.asarray(self.estimator.predict(rows), dtype=np.float64)
        return out.reshape(-1, horizon) if self.kind == "hgb" else out


@dataclass(frozen=True, slots=True)
class Design:
    """Feature rows of some origins and what maps them back: ``x`` as the tier's estimator
    takes it, ``y`` the normalized targets ``(origins, horizon)`` (NaN where unknown),
    ``level``/``scale`` per origin, ``actual`` the raw targets."""

    x: FloatArray
    y: FloatArray
    level: FloatArray
    scale: FloatArray
    actual: FloatArray


def design(
    segment: Segment,
    origins: IntArray,
    *,
    lags: int,
    kind: ModelKind,
    frequency: Frequency,
    season: int,
    horizon: int,
) -> Design:
    """The rows of ``origins`` of one segment (each ``>= lags`` and ``+ horizon <= len``)."""
    windows = lag_windows(segment.values, origins, lags)
    level, scale = normalize(windows, season)
    z = (windows - level[:, None]) / scale[:, None]
    steps = origins[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
    actual = segment.values[steps]
    y = (actual - level[:, None]) / scale[:, None]
    step_times = segment.times[steps]
    return Design(_rows(z, step_times, kind, frequency), y, level, scale, actual)


def _rows(z: FloatArray, step_times: IntArray, kind: ModelKind, frequency: Frequency) -> FloatArray:
    """Estimator input for normalized lag windows ``z`` whose forecast steps fall at
    ``step_times`` ``(origins, horizon)``."""
    n, horizon = step_times.shape
    if kind == "ridge":
        return np.hstack([z, calendar_terms(step_times[:, 0], frequency)])
    cal = calendar_terms(step_times.reshape(-1), frequency)
    steps = np.tile(np.arange(1, horizon + 1, dtype=np.float64), n)[:, None]
    return np.hstack([np.repeat(z, horizon, axis=0), steps, cal])


def fit_tier(
    designs: Sequence[Design], kind: ModelKind, *, horizon: int, seed: int = 0
) -> Estimator:
    """Fit one tier's estimator on the stacked rows of ``designs``."""
    x = np.vstack([d.x for d in designs])
    y = np.vstack([d.y for d in designs])
    if kind == "ridge":
        estimator = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=1.0))])
        estimator.fit(x, y)
        fitted: Estimator = estimator
        return fitted
    target = y.reshape(-1)
    rng = np.random.default_rng(seed)
    if len(target) > _HGB_MAX_ROWS:
        keep = np.sort(rng.choice(len(target), _HGB_MAX_ROWS, replace=False))
        x, target = x[keep], target[keep]
    model = HistGradientBoostingRegressor(
        max_iter=200,
        learning_rate=0.05,
        max_leaf_nodes=31,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=seed,
    )
    model.fit(x, target)
    boosted: Estimator = model
    return boosted


def conformal_quantiles(residuals: FloatArray, levels: FloatArray) -> FloatArray:
    """Quantiles ``(len(levels), horizon)`` of scaled residuals ``(n, horizon)`` at levels
    moved away from the median by ``(n + 1) / n`` (the split-conformal finite-sample
    correction: a level-q bound from n residuals covers at least q of new ones)."""
    n = len(residuals)
    widened = np.clip(0.5 + (levels - 0.5) * (n + 1) / n, 0.0, 1.0)
    out: FloatArray = np.quantile(residuals, widened, axis=0)
    return out


@dataclass(frozen=True, slots=True)
class Forecaster:
    """A fitted model plus everything needed to use it on a new series: the columns it
    was trained on, the frequency, the season, the horizon and the tiers (deepest first)."""

    frequency: Frequency
    season: int
    horizon: int
    target: str
    time_col: str
    series_col: str | None
    max_gap_steps: int
    tiers: tuple[Tier, ...]
    version: str

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a forecaster needs at least one tier")
        depths = [tier.lags for tier in self.tiers]
        if depths != sorted(set(depths), reverse=True):
            raise ValueError(f"tiers must be distinct and deepest first, got {depths}")

    @property
    def min_rows(self) -> int:
        """The least history that can be forecast (the shallowest tier's lags)."""
        return self.tiers[-1].lags

    @property
    def max_lags(self) -> int:
        return self.tiers[0].lags

    @property
    def step_ns(self) -> int:
        """The fixed step, or a calendar frequency's typical one (for formatting only)."""
        return self.frequency.nominal_ns

    def tier_for(self, rows: int) -> int:
        """The index of the deepest tier a regular history of ``rows`` rows can feed."""
        for index, tier in enumerate(self.tiers):
            if rows >= tier.lags:
                return index
        raise TooFewRowsError(self.min_rows, rows)

    def origin(self, values: FloatArray, last_time_ns: int) -> Origin:
        """The origin after a regular history ``values`` (oldest first) ending at
        ``last_time_ns``. Raises :class:`TooFewRowsError` below :attr:`min_rows`."""
        index = self.tier_for(len(values))
        tier = self.tiers[index]
        window = np.asarray(values[len(values) - tier.lags :], dtype=np.float64)[None, :]
        level, scale = normalize(window, self.season)
        z = (window - level[:, None]) / scale[:, None]
        step_times = self.frequency.after(last_time_ns, self.horizon)[None, :]
        rows = _rows(z, step_times, tier.kind, self.frequency)
        return Origin(index, rows, float(level[0]), float(scale[0]), last_time_ns)

    def prepare(self, times_ns: IntArray, values: FloatArray, *, max_gap_steps: int = 0) -> Origin:
        """The origin after a sorted, unique series: put on its grid with runs of up to
        ``max(max_gap_steps, the model's bound)`` missing steps interpolated; after a longer
        gap only the run that follows it is used.

        Raises :class:`~forecasting.errors.IrregularSeriesError` for times off the calendar
        or :class:`~forecasting.errors.TooFewRowsError` for too short a run.
        """
        bound = max(max_gap_steps, self.max_gap_steps)
        parts = segments(times_ns, values, self.frequency, max_gap_steps=bound)
        if not parts:
            raise TooFewRowsError(self.min_rows, 0)
        last = parts[-1]
        return self.origin(last.values, int(last.times[-1]))

    def method(self, origin: Origin) -> str:
        """The name of the tier that serves ``origin`` (``ridge-l336``, ``hgb-l96``...)."""
        return self.tiers[origin.tier].method

    def predict(self, origin: Origin, steps: int) -> tuple[IntArray, FloatArray]:
        """Times and values of the next ``steps`` points (1 <= steps <= horizon)."""
        self._check_steps(steps)
        tier = self.tiers[origin.tier]
        normalized = tier.predict_normalized(origin.rows, self.horizon)[0, :steps]
        values = origin.level + origin.scale * normalized
        times = self.frequency.after(origin.last_time_ns, steps)
        return times, values

    def quantiles(
        self, tier: int, scale: float, point: FloatArray, levels: Sequence[float]
    ) -> FloatArray:
        """The ``levels`` quantiles ``(len(levels), len(point))`` of the forecast ``point``
        made by tier ``tier`` from an origin of scale ``scale`` (:attr:`Origin.tier`,
        :attr:`Origin.scale`): the point plus the scale times the tier's residual quantile at
        each step. A higher level never has a lower value."""
        steps = len(point)
        self._check_steps(steps)
        residuals = self.tiers[tier].residuals[:, :steps]
        order = np.argsort(np.asarray(levels, dtype=np.float64), kind="stable")
        q = conformal_quantiles(residuals, np.asarray(levels, dtype=np.float64)[order])
        values = point[None, :] + scale * q
        values = np.maximum.accumulate(values, axis=0)  # exact monotonicity despite rounding
        out = np.empty_like(values)
        out[order] = values
        return out

    def _check_steps(self, steps: int) -> None:
        if not 1 <= steps <= self.horizon:
            raise ValueError(f"steps must be between 1 and {self.horizon}, got {steps}")
