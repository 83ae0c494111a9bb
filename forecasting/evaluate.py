"""Holdout evaluation of a forecaster against seasonal-naive baselines.

Every step of the holdout tail is used as a forecast origin whose full horizon lies inside
the holdout; errors are averaged over all origins and all horizon steps. Seasonal naive
predicts ``y[t+h] = y[t+h-m*ceil(h/m)]`` (the last value one season earlier), for a daily
and a weekly season.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.features import NS_PER_DAY, FeatureSpec, FloatArray, IntArray, training_set
from forecasting.model import Forecaster, fit

__all__ = ["Scores", "evaluate_holdout", "seasonal_naive"]


@dataclass(frozen=True, slots=True)
class Scores:
    mae: float
    mape_percent: float

    def as_dict(self) -> dict[str, float]:
        return {"mae": round(self.mae, 3), "mape_percent": round(self.mape_percent, 4)}


def _scores(pred: FloatArray, actual: FloatArray) -> Scores:
    err = np.abs(pred - actual)
    nonzero = actual != 0
    mape = float(np.mean(err[nonzero] / np.abs(actual[nonzero])) * 100) if nonzero.any() else 0.0
    return Scores(mae=float(np.mean(err)), mape_percent=mape)


def seasonal_naive(values: FloatArray, origins: IntArray, horizon: int, season: int) -> FloatArray:
    """Seasonal-naive forecasts, one row per origin (history ``values[:origin]``)."""
    h = np.arange(horizon, dtype=np.int64)
    idx = origins[:, None] - season + (h[None, :] % season)
    return np.asarray(values[idx], dtype=np.float64)


def evaluate_holdout(
    times_ns: IntArray,
    values: FloatArray,
    spec: FeatureSpec,
    *,
    target: str,
    holdout_rows: int,
    alpha: float = 1.0,
) -> tuple[Forecaster, dict[str, Scores]]:
    """Fit on all but the last ``holdout_rows`` rows, score on them.

    Returns the model fitted on the training part and scores keyed ``model``,
    ``seasonal_naive_daily`` and ``seasonal_naive_weekly`` (a baseline is left out when the
    history is too short for its season).
    """
    n = len(values)
    split = n - holdout_rows
    if holdout_rows < spec.horizon or split <= spec.min_rows + spec.horizon:
        raise ValueError(
            f"{n} rows cannot hold a {holdout_rows}-row holdout after "
            f"{spec.min_rows + spec.horizon} training rows"
        )
    model = fit(times_ns[:split], values[:split], spec, target=target, alpha=alpha)
    x, y = training_set(times_ns, values, spec)
    # Row i of (x, y) is origin spec.min_rows + i; keep origins inside the holdout.
    first = split - spec.min_rows
    pred = np.asarray(model.estimator.predict(x[first:]), dtype=np.float64)
    actual = y[first:]
    results = {"model": _scores(pred, actual)}
    origins = np.arange(split, n - spec.horizon + 1, dtype=np.int64)
    steps_per_day = NS_PER_DAY // spec.step_ns if NS_PER_DAY % spec.step_ns == 0 else 0
    for name, season in (("daily", steps_per_day), ("weekly", 7 * steps_per_day)):
        if season and season <= split:
            baseline = seasonal_naive(values, origins, spec.horizon, season)
            results[f"seasonal_naive_{name}"] = _scores(baseline, actual)
    return model, results
