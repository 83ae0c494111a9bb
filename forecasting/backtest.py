"""Backtest of a global forecaster: model choice, accuracy, conformal residuals, coverage.

Each evaluated series' last segment ends with two windows of ``holdout`` rows: a
*calibration* window and, after it, the *holdout*. Every origin whose whole horizon lies in a
window is scored (all horizon steps, every origin, stride one).

1. Each candidate kind (Ridge, gradient boosting) is fitted at the deepest tier on what
   precedes the calibration window and scored on it; the lower mean MASE wins.
2. Each tier of the winner is fitted on the same data; its scaled residuals on the
   calibration window are its conformal residuals.
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

from forecasting.errors import ForecastingError
from forecasting.features import FloatArray, IntArray
from forecasting.frequency import Frequency
from forecasting.gaps import Segment
from forecasting.model import Design, Estimator, ModelKind, Tier, design, fit_tier

__all__ = [
    "Backtest",
    "SeriesData",
    "Setup",
    "Window",
    "baseline_scores",
    "coverage",
    "mase_scale",
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
    data: Sequence[SeriesData], setup: Setup, lags: int, kind: ModelKind, cutoff: int | None
) -> list[Design]:
    """Rows of every origin with full lags whose horizon ends before ``cutoff`` rows from the
    end of each series' last segment (None: every origin)."""
    out = []
    for item in data:
        for i, part in enumerate(item.parts):
            end = len(part)
            if i == len(item.parts) - 1 and cutoff is not None:
                end = len(part) - cutoff
            origins = _origins(lags, end - setup.horizon)
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
    ``(origins, horizon)``, absolute errors, and the MASE scale."""

    residuals: list[FloatArray]
    abs_errors: list[FloatArray]
    scales: list[FloatArray]
    mase_scales: list[float]

    def mae(self) -> float:
        return float(np.mean(np.concatenate([e.reshape(-1) for e in self.abs_errors])))

    def mase(self) -> float:
        return float(
            np.mean(
                [np.mean(e) / s for e, s in zip(self.abs_errors, self.mase_scales, strict=True)]
            )
        )


def mase_scale(values: FloatArray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (falls back to lag one, then to 1)."""
    m = season if len(values) > season else 1
    if len(values) <= m:
        return 1.0
    scale = float(np.mean(np.abs(values[m:] - values[:-m])))
    return scale if scale > 0 else 1.0


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
    scored = Scored([], [], [], [])
    for item in data:
        part = item.last
        start = len(part) - window * setup.holdout
        stop = start + setup.holdout
        d = _design(part, _origins(start, stop - setup.horizon), setup, lags, kind)
        pred = tier.predict_normalized(d.x, setup.horizon)
        scored.residuals.append(d.y - pred)
        raw = d.level[:, None] + d.scale[:, None] * pred
        scored.abs_errors.append(np.abs(d.actual - raw))
        scored.scales.append(d.scale)
        scored.mase_scales.append(mase_scale(part.values[:start], setup.season))
    return scored


def coverage(scored: Scored, residuals: FloatArray, low: float, high: float) -> float:
    """Share of ``scored``'s actual values inside its ``[low, high]`` conformal interval
    built from the sorted scaled ``residuals`` ``(n, horizon)``."""
    q = np.quantile(residuals, [low, high], axis=0)
    inside = [((r >= q[0]) & (r <= q[1])) for r in scored.residuals]
    return float(np.mean(np.concatenate([i.reshape(-1) for i in inside])))


def baseline_scores(data: Sequence[SeriesData], setup: Setup) -> dict[str, dict[str, float]]:
    """Naive and seasonal naive on the holdout origins, as MAE and MASE."""
    out = {}
    for name, period in (("naive", 1), ("seasonal_naive", setup.season)):
        errors, scales = [], []
        for item in data:
            v = item.last.values
            start = len(v) - setup.holdout
            origins = _origins(start, len(v) - setup.horizon)
            h = np.arange(setup.horizon, dtype=np.int64)
            idx = origins[:, None] - period + (h[None, :] % period)
            steps = origins[:, None] + h[None, :]
            errors.append(np.abs(v[steps] - v[idx]))
            scales.append(mase_scale(v[:start], setup.season))
        mae = float(np.mean(np.concatenate([e.reshape(-1) for e in errors])))
        mase = float(np.mean([np.mean(e) / s for e, s in zip(errors, scales, strict=True)]))
        out[name] = {"mae": mae, "mase": mase}
    return out


@dataclass(frozen=True, slots=True)
class Backtest:
    """The outcome: the winning kind, the comparison, per-tier holdout scores and coverage,
    and each tier's out-of-sample residuals (sorted per step)."""

    kind: ModelKind
    selection: dict[str, dict[str, float]]
    holdout: dict[str, dict[str, float]]
    residuals: dict[int, FloatArray]


def run_backtest(
    data: Sequence[SeriesData], setup: Setup, candidates: Sequence[ModelKind]
) -> Backtest:
    """Steps 1 to 3 of the module docstring."""
    deepest = setup.tiers[0]
    cal_cut, hold_cut = 2 * setup.holdout, setup.holdout
    selection: dict[str, dict[str, float]] = {}
    fitted: dict[str, tuple[Estimator, Scored]] = {}
    for kind in candidates:
        estimator = fit_tier(
            train_designs(data, setup, deepest, kind, cal_cut), kind, horizon=setup.horizon
        )
        scored = _score(estimator, data=data, setup=setup, lags=deepest, kind=kind, window=2)
        fitted[kind] = (estimator, scored)
        selection[kind] = {"mae": scored.mae(), "mase": scored.mase()}
    kind = min(candidates, key=lambda k: selection[k]["mase"])
    holdout: dict[str, dict[str, float]] = {}
    residuals: dict[int, FloatArray] = {}
    for lags in setup.tiers:
        if lags == deepest:
            calibration = fitted[kind][1]
        else:
            estimator = fit_tier(
                train_designs(data, setup, lags, kind, cal_cut), kind, horizon=setup.horizon
            )
            calibration = _score(estimator, data=data, setup=setup, lags=lags, kind=kind, window=2)
        cal_res = np.vstack(calibration.residuals)
        estimator = fit_tier(
            train_designs(data, setup, lags, kind, hold_cut), kind, horizon=setup.horizon
        )
        scored = _score(estimator, data=data, setup=setup, lags=lags, kind=kind, window=1)
        holdout[f"{kind}-l{lags}"] = {
            "mae": scored.mae(),
            "mase": scored.mase(),
            "coverage_80": coverage(scored, cal_res, 0.1, 0.9),
        }
        residuals[lags] = np.sort(np.vstack([cal_res, *scored.residuals]), axis=0)
    return Backtest(kind, selection, holdout, residuals)


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
