"""The accuracy harness (``scripts.accuracy``): its measures against hand computations, the
model's holdout scores as the backtest reports them, and the peer's subprocess contract.

The peer runs in ``.venv-peer`` (``make peer``; ``make test`` builds it first): without it
the peer tests fail and say how to build it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting import metrics
from scripts.accuracy import PeerError, _peer_arrays, goals, run_peer, score


def test_mase_scale_is_the_in_sample_seasonal_naive_mae():
    values = np.array([1.0, 2.0, 4.0, 7.0])
    assert metrics.mase_scale(values, 1) == 2.0  # |2-1|, |4-2|, |7-4|
    assert metrics.mase_scale(values, 2) == 4.0  # |4-1|, |7-2|
    assert metrics.mase_scale(values, 4) == 2.0  # no full season before the end: lag one
    assert metrics.mase_scale(np.array([3.0, 3.0, 3.0]), 1) == 1.0  # flat: no division by 0


def test_mae_mase_and_coverage_match_hand_computations():
    actual = [np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[10.0]])]
    forecast = [np.array([[2.0, 2.0], [3.0, 2.0]]), np.array([[13.0]])]
    # errors 1, 0, 0, 2 (MAE 0.75, scale 0.5: 1.5) and 3 (scale 3: 1.0)
    assert metrics.mae(actual, forecast) == pytest.approx(6 / 5)
    assert metrics.mase(actual, forecast, [0.5, 3.0]) == pytest.approx((1.5 + 1.0) / 2)
    low = [np.array([[0.0, 2.5], [3.0, 5.0]]), np.array([[9.0]])]
    high = [np.array([[1.0, 3.0], [4.0, 6.0]]), np.array([[11.0]])]
    # 1 in [0, 1], 2 not in [2.5, 3], 3 in [3, 4], 4 not in [5, 6], 10 in [9, 11]
    assert metrics.coverage(actual, low, high) == pytest.approx(3 / 5)


def test_naive_forecasts_repeat_the_last_period():
    values = np.arange(1.0, 7.0)  # 1 .. 6
    origins = np.array([4, 5])
    np.testing.assert_array_equal(
        metrics.naive_forecasts(values, origins, 3, 2), [[3.0, 4.0, 3.0], [4.0, 5.0, 4.0]]
    )
    np.testing.assert_array_equal(
        metrics.naive_forecasts(values, origins, 2, 1), [[4.0, 4.0], [5.0, 5.0]]
    )


def test_the_model_scores_are_hand_computable_from_its_holdout_forecasts(tiny):
    holdout = tiny.holdout
    assert holdout.series == ["a", "b"] and holdout.first_origin == [54, 54]
    per_series, inside, count = [], 0, 0
    for v, first, a, f, lo, hi in zip(
        holdout.values,
        holdout.first_origin,
        holdout.actual,
        holdout.forecast,
        holdout.low,
        holdout.high,
        strict=True,
    ):
        assert a.shape == (6 - 3 + 1, 3)  # every origin whose horizon lies in the holdout
        np.testing.assert_array_equal(a[:, 0], v[first : first + 4])
        seasonal = np.abs(v[4:first] - v[: first - 4]).mean()
        per_series.append(np.abs(a - f).mean() / seasonal)
        inside += int(((a >= lo) & (a <= hi)).sum())
        count += a.size
    scores = score(holdout, holdout.forecast, (holdout.low, holdout.high))
    assert scores.mase == pytest.approx(np.mean(per_series))
    assert scores.coverage_80 == pytest.approx(inside / count)
    # the backtest's own figures (coverage from scaled residuals) agree
    reported = tiny.report["holdout"]["model"]
    assert scores.mase == pytest.approx(reported["mase"])
    assert scores.mae == pytest.approx(reported["mae"])
    assert scores.coverage_80 == pytest.approx(reported["coverage_80"])
    naive = score(
        holdout,
        [
            metrics.naive_forecasts(v, first + np.arange(4), 3, 1)
            for v, first in zip(holdout.values, holdout.first_origin, strict=True)
        ],
    )
    assert naive.mase == pytest.approx(tiny.report["holdout"]["naive"]["mase"])


def test_the_peer_forecasts_every_holdout_origin_in_its_own_venv(tiny):
    holdout = tiny.holdout
    runs = dict(zip(holdout.series, holdout.values, strict=True))
    peer = run_peer(runs, horizon=3, holdout=6, season=4)
    assert list(peer.columns) == ["unique_id", "origin", "step", "AutoETS", "AutoARIMA"]
    arrays = _peer_arrays(peer, holdout, 3)
    for name, forecasts in arrays.items():
        assert [f.shape for f in forecasts] == [(4, 3), (4, 3)], name
        assert all(np.isfinite(f).all() for f in forecasts)
        # a seasonal pattern on a trend: a working peer beats naive by far
        naive = tiny.report["holdout"]["naive"]["mase"]
        assert score(holdout, forecasts).mase < 0.7 * naive, name
    result = {
        "scores": {
            "model": score(holdout, holdout.forecast, (holdout.low, holdout.high)).as_dict(),
            "seasonal_naive": tiny.report["holdout"]["seasonal_naive"],
            **{name: score(holdout, f).as_dict() for name, f in arrays.items()},
        }
    }
    g = goals(result)
    assert g.best_peer in arrays
    assert g.ratio_to_peer == pytest.approx(
        result["scores"]["model"]["mase"] / result["scores"][g.best_peer]["mase"]
    )


def test_a_missing_peer_venv_or_a_failing_peer_is_a_clear_error(tiny, tmp_path: Path):
    runs = dict(zip(tiny.holdout.series, tiny.holdout.values, strict=True))
    with pytest.raises(PeerError, match="make peer"):
        run_peer(runs, horizon=3, holdout=6, season=4, python=tmp_path / "python")
    with pytest.raises(PeerError, match="unknown model"):
        run_peer(runs, horizon=3, holdout=6, season=4, models=("Prophet",))
