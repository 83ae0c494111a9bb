"""Backtest of a global forecaster: model choice, accuracy, conformal residuals, coverage.

Each evaluated series' last segment ends with windows of ``holdout`` rows: up to three
*calibration* folds and, after them, the *holdout*. Every origin whose whole horizon lies in
a window is scored (all horizon steps, every origin, stride one), by a model fitted on
everything before that window (expanding-window cross-validation) or, for the conformal
residuals, on everything before the holdout but that window (step 2).

1. Each candidate kind (Ridge, gradient boosting) is fitted at the deepest tier for each
   calibration fold and scored on it; the lower mean MASE over the folds wins.
2. Each tier of the winner is fitted for each calibration fold on every origin before the
   holdout except those whose lags or horizon touch that fold (leave one fold out, with the
   rows around it: :func:`train_designs`), and scored on it; its scaled residuals on the folds
   are its conformal residuals. A fold's model thus also learns from the folds after it: it
   is trained on nearly as much data as the holdout's model, whose errors the residuals stand
   for (an expanding-window fold's model, trained on less, errs more and widens the bounds).
   Where no origin after the fold clears its lags and horizon (always for the last fold) the
   model is step 1's.
3. Each tier is refitted on everything before the holdout and scored on it; its intervals
   (from step 2) are checked against the holdout: the empirical coverage.
4. The residuals of steps 2 and 3 (all out of sample) go into the artifact.

MASE divides a series' MAE by the in-sample MAE of its seasonal naive forecast (lag of one
season, the plain last value for a season of one) over the rows before the scored window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from forecasting import metrics
from forecasting.errors import ForecastingError
from forecasting.features import FloatArray, IntArray
from forecasting.frequency import Frequency
from forecasting.gaps import Segment
from forecasting.metrics import mase_scale, naive_forecasts
from forecasting.model import (
    Design,
    Estimator,
    ModelKind,
    Tier,
    conformal_quantiles,
    design,
    fit_tier,
)

__all__ = [
    "Backtest",
    "HoldoutForecasts",
    "SeriesData",
    "Setup",
    "Window",
    "baseline_scores",
    "coverage",
    "folds_for",
    "mase_scale",
    "rows_needed",
    "run_backtest",
    "train_designs",
]


@dataclass(frozen=True, slots=True)
class Setup:
    """What the model is trained for: the calendar, season, horizon, tiers (deepest first)."""

    frequency: Frequency
    season: int
    horizon: int
    tiers: tuple[int, ...]
    holdout: int


@dataclass(frozen=True, slots=True)
class SeriesData:
    """One series' segments (oldest first)."""

    series: str
    parts: tuple[Segment, ...]

    @property
    def last(self) -> Segment:
        return self.parts[-1]


@dataclass(frozen=True, slots=True)
class Window:
    """Rows ``[start, stop)`` of a series' last segment, scored from every origin inside."""

    start: int
    stop: int


def _origins(first: int, last: int) -> IntArray:
    return np.arange(first, last + 1, dtype=np.int64)


def train_designs(
    data: Sequence[SeriesData],
    setup: Setup,
    lags: int,
    kind: ModelKind,
    cutoff: int | None,
    *,
    left_out: int | None = None,
) -> list[Design]:
    """Rows of every origin with full lags whose horizon ends before ``cutoff`` rows from the
    end of each series' last segment (None: every origin). With ``left_out`` (a window number
    as in :func:`_score`: 2 the last calibration fold), the origins of the last segment whose
    lags or horizon overlap that window are left out too."""
    out = []
    for item in data:
        for i, part in enumerate(item.parts):
            end = len(part)
            if i == len(item.parts) - 1 and cutoff is not None:
                end = len(part) - cutoff
            origins = _origins(lags, end - setup.horizon)
            if i == len(item.parts) - 1 and left_out is not None:
                start = len(part) - left_out * setup.holdout
                clear = (origins + setup.horizon <= start) | (
                    origins - lags >= start + setup.holdout
                )
                origins = origins[clear]
            if len(origins):
                out.append(_design(part, origins, setup, lags, kind))
    if not out:
        raise ForecastingError(
            f"no segment holds {lags} lags plus a {setup.horizon}-step horizon to train on"
        )
    return out


def _design(part: Segment, origins: IntArray, setup: Setup, lags: int, kind: ModelKind) -> Design:
    return design(
        part,
        origins,
        lags=lags,
        kind=kind,
        frequency=setup.frequency,
        season=setup.season,
        horizon=setup.horizon,
    )


@dataclass(frozen=True, slots=True)
class Scored:
    """Forecasts of one window over the evaluated series: per series, normalized residuals
    ``(origins, horizon)``, actual values and forecasts, each origin's scale and the MASE
    scale."""

    residuals: list[FloatArray]
    actual: list[FloatArray]
    forecast: list[FloatArray]
    scales: list[FloatArray]
    mase_scales: list[float]

    def mae(self) -> float:
        return metrics.mae(self.actual, self.forecast)

    def mase(self) -> float:
        return metrics.mase(self.actual, self.forecast, self.mase_scales)


def _score(
    estimator: Estimator,
    *,
    data: Sequence[SeriesData],
    setup: Setup,
    lags: int,
    kind: ModelKind,
    window: int,
) -> Scored:
    """Score the window that ends ``window * holdout`` rows before each series' end...

    ``window`` 2 is the calibration window, 1 the holdout."""
    tier = Tier(lags, kind, estimator, np.zeros((1, setup.horizon)))
    scored = Scored([], [], [], [], [])
    for item in data:
        part = item.last
        start = len(part) - window * setup.holdout
        stop = start + setup.holdout
        d = _design(part, _origins(start, stop - setup.horizon), setup, lags, kind)
        pred = tier.predict_normalized(d.x, setup.horizon)
        scored.residuals.append(d.y - pred)
        scored.actual.append(d.actual)
        scored.forecast.append(d.level[:, None] + d.scale[:, None] * pred)
        scored.scales.append(d.scale)
        scored.mase_scales.append(mase_scale(part.values[:start], setup.season))
    return scored


def coverage(scored: Scored, residuals: FloatArray, low: float, high: float) -> float:
    """Share of ``scored``'s actual values inside its ``[low, high]`` conformal interval
    built from the sorted scaled ``residuals`` ``(n, horizon)``."""
    q = conformal_quantiles(residuals, np.array([low, high]))
    inside = [((r >= q[0]) & (r <= q[1])) for r in scored.residuals]
    return float(np.mean(np.concatenate([i.reshape(-1) for i in inside])))


def baseline_scores(data: Sequence[SeriesData], setup: Setup) -> dict[str, dict[str, float]]:
    """Naive and seasonal naive on the holdout origins, as MAE and MASE."""
    out = {}
    for name, period in (("naive", 1), ("seasonal_naive", setup.season)):
        actual, forecast, scales = [], [], []
        for item in data:
            v = item.last.values
            start = len(v) - setup.holdout
            origins = _origins(start, len(v) - setup.horizon)
            steps = origins[:, None] + np.arange(setup.horizon, dtype=np.int64)[None, :]
            actual.append(v[steps])
            forecast.append(naive_forecasts(v, origins, setup.horizon, period))
            scales.append(mase_scale(v[:start], setup.season))
        out[name] = {
            "mae": metrics.mae(actual, forecast),
            "mase": metrics.mase(actual, forecast, scales),
        }
    return out


@dataclass(frozen=True, slots=True)
class HoldoutForecasts:
    """The deepest tier's forecasts of the holdout, per evaluated series: its last segment's
    values, the row of the first origin in them, actual values, forecasts and the bounds of
    the 80 % interval ``(origins, horizon)``, and the MASE scale."""

    series: list[str]
    values: list[FloatArray]
    first_origin: list[int]
    actual: list[FloatArray]
    forecast: list[FloatArray]
    low: list[FloatArray]
    high: list[FloatArray]
    mase_scales: list[float]


def _holdout_forecasts(
    data: Sequence[SeriesData], setup: Setup, scored: Scored, residuals: FloatArray
) -> HoldoutForecasts:
    q = conformal_quantiles(residuals, np.array([0.1, 0.9]))
    pairs = list(zip(scored.forecast, scored.scales, strict=True))
    return HoldoutForecasts(
        series=[item.series for item in data],
        values=[item.last.values for item in data],
        first_origin=[len(item.last) - setup.holdout for item in data],
        actual=scored.actual,
        forecast=scored.forecast,
        low=[f + s[:, None] * q[0] for f, s in pairs],
        high=[f + s[:, None] * q[1] for f, s in pairs],
        mase_scales=scored.mase_scales,
    )


@dataclass(frozen=True, slots=True)
class Backtest:
    """The outcome: the winning kind, the comparison, per-tier holdout scores and coverage,
    and each tier's out-of-sample residuals (sorted per step)."""

    kind: ModelKind
    selection: dict[str, dict[str, float]]
    holdout: dict[str, dict[str, float]]
    residuals: dict[int, FloatArray]
    forecasts: HoldoutForecasts


MAX_FOLDS = 3


def folds_for(longest: int, setup: Setup) -> int:
    """Calibration folds a last segment of ``longest`` rows allows (at most
    :data:`MAX_FOLDS`; 0: not even one fold and the holdout): the oldest fold's model needs
    one training origin, the deepest lags and a horizon before it (:func:`rows_needed`)."""
    spare = longest - setup.tiers[0] - setup.horizon
    return max(0, min(MAX_FOLDS, spare // setup.holdout - 1))


def rows_needed(setup: Setup, folds: int) -> int:
    """The rows of a last segment that ``folds`` calibration folds and the holdout need."""
    return (folds + 1) * setup.holdout + setup.tiers[0] + setup.horizon


def _fold_scores(
    data: Sequence[SeriesData], setup: Setup, lags: int, kind: ModelKind, folds: int
) -> list[Scored]:
    """The calibration folds, oldest first (window ``folds + 1`` ... window 2), each scored by
    a model fitted on everything before it (expanding window: the model choice)."""
    out = []
    for window in range(folds + 1, 1, -1):
        estimator = fit_tier(
            train_designs(data, setup, lags, kind, window * setup.holdout),
            kind,
            horizon=setup.horizon,
        )
        out.append(_score(estimator, data=data, setup=setup, lags=lags, kind=kind, window=window))
    return out


def _clears_after(setup: Setup, lags: int, window: int) -> bool:
    """Whether an origin after calibration window ``window`` clears its lags and horizon
    before the holdout: ``(window - 2) * holdout`` rows lie between them."""
    return (window - 2) * setup.holdout >= lags + setup.horizon


def _calibration_scores(
    data: Sequence[SeriesData],
    setup: Setup,
    lags: int,
    kind: ModelKind,
    folds: int,
    *,
    expanding: Sequence[Scored] | None = None,
) -> list[Scored]:
    """The calibration folds, oldest first, each scored by a model fitted on every origin
    before the holdout but those touching it (step 2 of the module docstring). ``expanding``:
    the same tier's :func:`_fold_scores`, reused for the folds with nothing after them."""
    out = []
    for k, window in enumerate(range(folds + 1, 1, -1)):
        if expanding is not None and not _clears_after(setup, lags, window):
            out.append(expanding[k])
            continue
        estimator = fit_tier(
            train_designs(data, setup, lags, kind, setup.holdout, left_out=window),
            kind,
            horizon=setup.horizon,
        )
        out.append(_score(estimator, data=data, setup=setup, lags=lags, kind=kind, window=window))
    return out


def run_backtest(
    data: Sequence[SeriesData], setup: Setup, candidates: Sequence[ModelKind], folds: int
) -> Backtest:
    """Steps 1 to 3 of the module docstring, every series holding ``folds`` calibration
    windows and the holdout after its deepest lags."""
    deepest = setup.tiers[0]
    selection: dict[str, dict[str, float]] = {}
    fitted: dict[str, list[Scored]] = {}
    for kind in candidates:
        fitted[kind] = _fold_scores(data, setup, deepest, kind, folds)
        selection[kind] = {
            "mae": float(np.mean([f.mae() for f in fitted[kind]])),
            "mase": float(np.mean([f.mase() for f in fitted[kind]])),
        }
    kind = min(candidates, key=lambda k: selection[k]["mase"])
    holdout: dict[str, dict[str, float]] = {}
    residuals: dict[int, FloatArray] = {}
    for lags in setup.tiers:
        calibration = _calibration_scores(
            data, setup, lags, kind, folds, expanding=fitted[kind] if lags == deepest else None
        )
        cal_res = np.vstack([r for fold in calibration for r in fold.residuals])
        estimator = fit_tier(
            train_designs(data, setup, lags, kind, setup.holdout), kind, horizon=setup.horizon
        )
        scored = _score(estimator, data=data, setup=setup, lags=lags, kind=kind, window=1)
        holdout[f"{kind}-l{lags}"] = {
            "mae": scored.mae(),
            "mase": scored.mase(),
            "coverage_80": coverage(scored, cal_res, 0.1, 0.9),
        }
        residuals[lags] = np.sort(np.vstack([cal_res, *scored.residuals]), axis=0)
        if lags == deepest:
            forecasts = _holdout_forecasts(data, setup, scored, cal_res)
    return Backtest(kind, selection, holdout, residuals, forecasts)


def final_tiers(data: Sequence[SeriesData], setup: Setup, backtest: Backtest) -> tuple[Tier, ...]:
    """Each tier refitted on every origin of every series, with its backtest residuals."""
    return tuple(
        Tier(
            lags,
            backtest.kind,
            fit_tier(
                train_designs(data, setup, lags, backtest.kind, None),
                backtest.kind,
                horizon=setup.horizon,
            ),
            backtest.residuals[lags],
        )
        for lags in setup.tiers
    )
