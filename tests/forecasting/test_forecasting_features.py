"""Features: the calendar terms each frequency implies, lag windows and normalization."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import Frequency
from forecasting.features import calendar_terms, lag_windows, n_calendar, normalize


@pytest.mark.parametrize(
    ("alias", "columns"),
    [
        ("30min", 10),
        ("h", 10),
        ("D", 6),
        ("B", 4),
        ("W-SUN", 6),
        ("MS", 8),
        ("QS-JAN", 4),
        ("YS-JAN", 0),
    ],
)
def test_each_frequency_has_its_calendar_columns(alias, columns):
    freq = Frequency(alias)
    times = pd.date_range("2021-01-01", periods=30, freq=alias).as_unit("ns").asi8
    terms = calendar_terms(times, freq)
    assert terms.shape == (30, columns) == (30, n_calendar(freq))
    assert np.all(np.abs(terms) <= 1.0)


def test_monthly_terms_repeat_every_twelve_months_and_differ_within_a_year():
    times = pd.date_range("2000-01-01", periods=25, freq="MS").as_unit("ns").asi8
    terms = calendar_terms(times, Frequency("MS"))
    np.testing.assert_allclose(terms[:12], terms[12:24], atol=1e-12)
    assert len({tuple(np.round(row, 9)) for row in terms[:12]}) == 12


def test_business_day_terms_repeat_every_week():
    times = pd.bdate_range("2024-01-01", periods=10).as_unit("ns").asi8
    terms = calendar_terms(times, Frequency("B"))
    np.testing.assert_allclose(terms[:5], terms[5:], atol=1e-12)


def test_lag_windows_are_oldest_first_and_normalization_is_scale_free():
    values = np.arange(10, dtype=np.float64)
    windows = lag_windows(values, np.array([4, 10]), 3)
    assert windows.tolist() == [[1, 2, 3], [7, 8, 9]]
    level, scale = normalize(windows, season=2)
    level2, scale2 = normalize(windows * 1000 + 5, season=2)
    np.testing.assert_allclose(
        (windows - level[:, None]) / scale[:, None],
        (windows * 1000 + 5 - level2[:, None]) / scale2[:, None],
    )
    flat_level, flat_scale = normalize(np.full((1, 4), 7.0), season=2)
    assert flat_level.tolist() == [7.0] and flat_scale.tolist() == [7e-6]
