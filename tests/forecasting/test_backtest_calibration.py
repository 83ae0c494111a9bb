"""The conformal calibration of the backtest (step 2 of ``forecasting/backtest.py``): each
calibration fold is scored by a model fitted on every origin before the holdout except those
whose lags or horizon touch that fold. Checked against hand-listed origins, hand-fitted
residuals and a hand-computed coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting.backtest import SeriesData, Setup, _clears_after, train_designs
from forecasting.features import FloatArray, IntArray
from forecasting.frequency import Frequency
from forecasting.gaps import Segment
from forecasting.model import Tier, conformal_quantiles, design, fit_tier
from forecasting.train import load_frame

QUARTERLY = Frequency("QS-JAN")


def _ramp(rows: int, start: str = "2000-01-01") -> Segment:
    """A quarterly segment whose values are its row numbers: a design's first target is its
    origin."""
    times = pd.date_range(start, periods=rows, freq="QS-JAN").as_unit("ns").asi8
    return Segment("s", np.asarray(times, dtype=np.int64), np.arange(rows, dtype=np.float64))


def _origins(data: list[SeriesData], setup: Setup, lags: int, **kw: int) -> list[list[int]]:
    designs = train_designs(data, setup, lags, "ridge", setup.holdout, **kw)
    return [d.actual[:, 0].astype(int).tolist() for d in designs]


def test_a_left_out_fold_drops_exactly_the_origins_whose_lags_or_horizon_touch_it():
    setup = Setup(QUARTERLY, season=4, horizon=3, tiers=(4,), holdout=6)
    data = [SeriesData("s", (_ramp(12), _ramp(40, "2010-01-01")))]
    # holdout: rows 34..39, so a horizon ends by row 33: origins 4..31 of the last segment;
    # the earlier segment keeps every origin (4..9)
    assert _origins(data, setup, 4) == [list(range(4, 10)), list(range(4, 32))]
    # window 4 is rows 16..21: kept are the origins whose horizon ends by row 15 (4..13) and
    # those whose lags start at row 22 or later (26..31)
    assert _origins(data, setup, 4, left_out=4) == [
        list(range(4, 10)),
        [*range(4, 14), *range(26, 32)],
    ]
    # window 2 (rows 28..33) has nothing after it before the holdout: the expanding fold
    assert _origins(data, setup, 4, left_out=2) == [list(range(4, 10)), list(range(4, 26))]
    assert _clears_after(setup, 4, 4) and not _clears_after(setup, 4, 3)


@settings(max_examples=200, deadline=None)
@given(
    holdout=st.integers(1, 12),
    horizon=st.integers(1, 12),
    lags=st.integers(1, 20),
    window=st.integers(2, 6),
    extra=st.integers(0, 30),
)
def test_left_out_origins_are_those_overlapping_the_window_and_reuse_is_exact(
    holdout, horizon, lags, window, extra
):
    horizon = min(horizon, holdout)
    rows = window * holdout + lags + horizon + extra
    setup = Setup(QUARTERLY, season=4, horizon=horizon, tiers=(lags,), holdout=holdout)
    data = [SeriesData("s", (_ramp(rows),))]
    (every,) = _origins(data, setup, lags)
    (kept,) = _origins(data, setup, lags, left_out=window)
    start, stop = rows - window * holdout, rows - (window - 1) * holdout
    assert every == list(range(lags, rows - holdout - horizon + 1))
    assert kept == [o for o in every if o + horizon <= start or o - lags >= stop]
    # the expanding fold's model is reused exactly when no origin follows the window
    assert any(o >= stop for o in kept) == _clears_after(setup, lags, window)


def _scaled_residuals(
    parts: list[Segment], lags: int, fit_origins: IntArray, first: int
) -> FloatArray:
    """Residuals of the window whose first row is ``first`` (origins first .. first + 3),
    scored by Ridge fitted on ``fit_origins`` of every series."""
    kw = {"lags": lags, "kind": "ridge", "frequency": QUARTERLY, "season": 4, "horizon": 3}
    estimator = fit_tier([design(p, fit_origins, **kw) for p in parts], "ridge", horizon=3)
    tier = Tier(lags, "ridge", estimator, np.zeros((1, 3)))
    scored = [design(p, np.arange(first, first + 4), **kw) for p in parts]
    return np.vstack([d.y - tier.predict_normalized(d.x, 3) for d in scored])


@pytest.mark.parametrize(
    ("lags", "oldest_fold"),
    [
        # window 4 is rows 36..41, the holdout 54..59: origins up to 33, or from 42 + lags
        # until the last horizon before the holdout (origin 51)
        (8, np.r_[8:34, 50:52]),
        (4, np.r_[4:34, 46:52]),
    ],
)
def test_the_coverage_and_the_served_residuals_are_the_hand_computed_ones(
    tiny, quarterly_frame, lags, oldest_fold
):
    series = load_frame(quarterly_frame, time_col="time", target="y", series_col="s")
    parts = [Segment(sid, t, v) for sid, (t, v) in series.items()]
    # three folds (windows 4, 3, 2: rows 36, 42, 48 on) then the holdout (rows 54..59); the
    # two later folds have no origin after them that clears its lags and horizon
    calibration = np.vstack(
        [
            _scaled_residuals(parts, lags, oldest_fold, 36),
            _scaled_residuals(parts, lags, np.arange(lags, 40), 42),
            _scaled_residuals(parts, lags, np.arange(lags, 46), 48),
        ]
    )
    holdout = _scaled_residuals(parts, lags, np.arange(lags, 52), 54)
    n = len(calibration)  # 3 folds x 4 origins x 2 series
    levels = 0.5 + np.array([-0.4, 0.4]) * (n + 1) / n
    low, high = np.quantile(calibration, levels, axis=0)
    inside = (holdout >= low) & (holdout <= high)
    assert tiny.report["holdout"][f"ridge-l{lags}"]["coverage_80"] == pytest.approx(inside.mean())
    served = tiny.model.tiers[[t.lags for t in tiny.model.tiers].index(lags)].residuals
    np.testing.assert_allclose(served, np.sort(np.vstack([calibration, holdout]), axis=0))
    # the oldest fold's model is not the expanding window's: the test tells them apart
    expanding = _scaled_residuals(parts, lags, np.arange(lags, 34), 36)
    assert not np.allclose(expanding, calibration[:8])


def test_conformal_quantiles_widen_the_levels_by_n_plus_one_over_n():
    residuals = np.arange(1.0, 10.0)[:, None]  # 1 .. 9, n = 9
    # levels 0.1 and 0.9 move to 0.5 -+ 0.4 * 10 / 9; np.quantile interpolates linearly
    # between the sorted values at positions level * (n - 1): 0.4444 and 7.5556
    q = conformal_quantiles(residuals, np.array([0.1, 0.9]))
    np.testing.assert_allclose(q[:, 0], [1 + 4 / 9, 8 + 5 / 9])
