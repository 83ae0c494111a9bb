"""The gap and NaN policy: short gaps interpolated, long ones split or refused by name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import Frequency, IrregularSeriesError, regularize
from forecasting.gaps import segments

HOUR = Frequency("h")


def hours(n: int) -> np.ndarray:
    return pd.date_range("2024-01-01", periods=n, freq="h").as_unit("ns").asi8


def test_one_missing_hour_is_interpolated():
    t = np.delete(hours(10), 4)
    v = np.delete(np.arange(10, dtype=np.float64), 4)
    grid, filled = regularize(t, v, HOUR, max_gap_steps=1)
    assert grid.tolist() == hours(10).tolist() and filled.tolist() == list(range(10))


def test_business_days_have_no_gap_over_a_weekend():
    t = pd.bdate_range("2024-01-01", periods=15).as_unit("ns").asi8
    v = np.arange(15, dtype=np.float64)
    grid, values = regularize(t, v, Frequency("B"), max_gap_steps=0)
    assert grid is t and values is v


def test_a_long_gap_splits_the_series_or_is_refused_naming_series_time_and_length():
    t = np.concatenate([hours(20)[:8], hours(20)[13:]])
    v = np.arange(len(t), dtype=np.float64)
    parts = segments(t, v, HOUR, max_gap_steps=2, series="meter-7")
    assert [len(p) for p in parts] == [8, 7]
    with pytest.raises(IrregularSeriesError) as exc:
        segments(t, v, HOUR, max_gap_steps=2, policy="refuse", series="meter-7")
    message = str(exc.value)
    assert "'meter-7'" in message and "2024-01-01T07:00:00Z" in message
    assert "gap of 5 missing" in message


def test_nan_values_are_missing_steps_and_leading_ones_are_dropped():
    t = hours(8)
    v = np.array([np.nan, 1.0, 2.0, np.nan, 4.0, 5.0, np.nan, np.nan])
    (part,) = segments(t, v, HOUR, max_gap_steps=1)
    assert part.times.tolist() == t[1:6].tolist() and part.values.tolist() == [1, 2, 3, 4, 5]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(5, 120),
    drops=st.lists(st.integers(1, 118), max_size=40),
    bound=st.integers(0, 4),
    alias=st.sampled_from(["30min", "B", "MS", "QE-DEC"]),
)
def test_segments_are_regular_and_keep_every_known_value(n, drops, bound, alias):
    grid = (
        pd.date_range("2001-01-31" if alias == "QE-DEC" else "2001-01-01", periods=n, freq=alias)
        .as_unit("ns")
        .asi8
    )
    keep = np.ones(n, dtype=bool)
    keep[[d for d in drops if d < n - 1]] = False
    t, v = grid[keep], np.sin(np.arange(n, dtype=np.float64))[keep]
    freq = Frequency(alias)
    parts = segments(t, v, freq, max_gap_steps=bound)
    known = dict(zip(t.tolist(), v.tolist(), strict=True))
    covered = 0
    for part in parts:
        pos = freq.positions(part.times)
        assert pos.tolist() == list(range(len(part)))  # regular, no missing step
        for time, value in zip(part.times.tolist(), part.values.tolist(), strict=True):
            if time in known:
                assert value == known[time]
                covered += 1
    assert covered == len(t)  # every row lands in a segment
    assert len(parts) == 1 + int(np.sum(np.diff(freq.positions(t)) - 1 > bound))
