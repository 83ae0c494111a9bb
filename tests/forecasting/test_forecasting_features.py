"""Features: lag rows, calendar terms, training matrices and regularization."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting import FeatureSpec, IrregularSeriesError, TooFewRowsError, regularize
from forecasting.features import NS_PER_DAY, calendar_terms, origin_row, training_set
from tests.forecasting.conftest import STEP


def test_origin_row_holds_the_lagged_values_newest_first(ramp):
    t, v = ramp
    spec = FeatureSpec(lags=(1, 2, 5), step_ns=STEP, horizon=2, daily_order=1, weekly_order=1)
    row = origin_row(v, int(t[-1]), spec)
    assert row.shape == (1, spec.n_features)
    assert row[0, :3].tolist() == [19.0, 18.0, 15.0]


def test_origin_row_refuses_history_shorter_than_the_largest_lag(ramp):
    t, v = ramp
    spec = FeatureSpec(lags=(1, 30), step_ns=STEP, horizon=1)
    with pytest.raises(TooFewRowsError) as info:
        origin_row(v, int(t[-1]), spec)
    assert (info.value.needed, info.value.got) == (30, 20)


def test_calendar_terms_repeat_daily_and_weekly_and_differ_within_a_day():
    spec = FeatureSpec(lags=(1,), step_ns=STEP, horizon=1, daily_order=2, weekly_order=1)
    monday = np.datetime64("2000-01-03T06:00", "ns").astype(np.int64)
    times = np.array([monday, monday + 7 * NS_PER_DAY, monday + NS_PER_DAY, monday + STEP])
    terms = calendar_terms(times, spec)
    assert terms.shape == (4, 6)
    np.testing.assert_allclose(terms[0], terms[1], atol=1e-9)  # one week later: identical
    np.testing.assert_allclose(terms[0, :4], terms[2, :4], atol=1e-9)  # daily part repeats
    assert not np.allclose(terms[0, 4:], terms[2, 4:])  # weekly part moves by a day
    assert not np.allclose(terms[0], terms[3])


def test_training_set_aligns_each_origin_with_the_following_horizon(ramp):
    t, v = ramp
    spec = FeatureSpec(lags=(1, 3), step_ns=STEP, horizon=4, daily_order=1, weekly_order=1)
    x, y = training_set(t, v, spec)
    assert x.shape[0] == y.shape[0] == 20 - 3 - 4 + 1
    # First origin is row 3: history 0..2, targets 3..6.
    assert x[0, :2].tolist() == [2.0, 0.0]
    assert y[0].tolist() == [3.0, 4.0, 5.0, 6.0]
    np.testing.assert_allclose(x[0, 2:], calendar_terms(t[2:3], spec)[0])


def test_regularize_returns_regular_series_unchanged(ramp):
    t, v = ramp
    t2, v2 = regularize(t, v, STEP)
    assert t2 is t and v2 is v


def test_regularize_interpolates_gaps_within_the_policy(ramp):
    t, v = ramp
    keep = np.array([0, 1, 2, 5, 6])
    t2, v2 = regularize(t[keep], v[keep], STEP, max_gap_steps=2)
    assert t2.tolist() == t[:7].tolist()
    assert v2.tolist() == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("offsets", "max_gap", "position", "words"),
    [
        ([0, 1, 2, 4], 0, 3, "gap of 1 missing step"),
        ([0, 1, 2, 6], 2, 3, "gap of 3 missing step"),
    ],
)
def test_regularize_rejects_gaps_beyond_the_policy(ramp, offsets, max_gap, position, words):
    t, v = ramp
    with pytest.raises(IrregularSeriesError, match=words) as info:
        regularize(t[offsets], v[offsets], STEP, max_gap_steps=max_gap)
    assert info.value.position == position


def test_regularize_rejects_off_grid_spacing(ramp):
    t, v = ramp
    t = t.copy()
    t[4] += 60_000_000_000  # one minute late
    with pytest.raises(IrregularSeriesError, match="not a multiple of the model's step 30 min"):
        regularize(t, v, STEP, max_gap_steps=5)


def test_feature_spec_rejects_nonsense():
    with pytest.raises(ValueError, match="lags"):
        FeatureSpec(lags=(), step_ns=STEP, horizon=1)
    with pytest.raises(ValueError, match="positive"):
        FeatureSpec(lags=(1,), step_ns=STEP, horizon=0)
