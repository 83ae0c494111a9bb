"""Frequency inference and calendar stepping: regular series of every supported frequency,
with random gaps, are recognised, and the times after them follow their calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecasting import Frequency, IrregularSeriesError, infer_frequency

ALIASES = [
    "15min",
    "30min",
    "h",
    "6h",
    "D",
    "B",
    "W-SUN",
    "W-WED",
    "MS",
    "ME",
    "QS-JAN",
    "QS-FEB",
    "QE-DEC",
    "QE-NOV",
    "YS-JAN",
    "YS-JUL",
    "YE-DEC",
]
PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def gappy_series(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray]:
    """``(alias, full grid, kept times)``: a regular series with random interior rows
    dropped (the first three and the last kept, so the spacing and the span show)."""
    alias = draw(st.sampled_from(ALIASES))
    start = pd.Timestamp("1990-01-01") + pd.Timedelta(days=draw(st.integers(0, 10_000)))
    grid = pd.date_range(start, periods=draw(st.integers(8, 80)), freq=alias).as_unit("ns").asi8
    keep = np.ones(len(grid), dtype=bool)
    drop = draw(st.lists(st.integers(3, len(grid) - 2), max_size=len(grid) // 3))
    keep[drop] = False
    return alias, grid, grid[keep]


@PROPERTY
@given(case=gappy_series())
def test_the_inferred_frequency_rebuilds_the_grid_and_continues_it(case):
    alias, grid, kept = case
    freq = infer_frequency(kept)
    if alias == "D" and not (pd.DatetimeIndex(kept).day_of_week >= 5).any():
        assert freq.alias == "B"  # a daily series whose weekends all fell in gaps
        return
    assert freq.grid(int(kept[0]), int(kept[-1])).tolist() == grid.tolist()
    expected = pd.date_range(pd.Timestamp(int(grid[-1])), periods=4, freq=alias)[1:]
    assert freq.after(int(grid[-1]), 3).tolist() == expected.as_unit("ns").asi8.tolist()
    positions = freq.positions(kept)
    assert positions.tolist() == np.searchsorted(grid, kept).tolist()


@pytest.mark.parametrize(
    ("times", "alias"),
    [
        (["2024-01-01", "2024-02-01", "2024-04-01"], "MS"),
        (["2024-01-31", "2024-02-29", "2024-03-31"], "ME"),
        (["2024-01-01", "2024-04-01", "2024-10-01"], "QS-JAN"),
        (["2023-12-31", "2024-03-31", "2024-06-30"], "QE-DEC"),
        (["2001-01-01", "2002-01-01", "2005-01-01"], "YS-JAN"),
        (["2024-01-04", "2024-01-05", "2024-01-08"], "B"),
        (["2024-01-07", "2024-01-14", "2024-02-04"], "W-SUN"),
        (["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 05:00"], "h"),
        (["2024-01-01 00:00", "2024-01-01 00:30", "2024-01-01 02:00"], "30min"),
    ],
)
def test_each_family_is_named_by_its_alias(times, alias):
    assert infer_frequency(pd.DatetimeIndex(times).as_unit("ns").asi8).alias == alias


@PROPERTY
@given(day=st.integers(0, 20_000), count=st.integers(1, 30))
def test_business_days_skip_weekends_and_month_steps_keep_the_calendar(day, count):
    start = pd.Timestamp("1980-01-01") + pd.Timedelta(days=day)
    friday = start + pd.offsets.Week(weekday=4)
    after = pd.DatetimeIndex(Frequency("B").after(friday.value, count))
    assert after[0].day_of_week == 0 and after[0] - friday == pd.Timedelta(days=3)
    assert not (after.day_of_week >= 5).any() and len(set(after)) == count
    first = start.normalize().replace(day=1)
    starts = pd.DatetimeIndex(Frequency("MS").after(first.value, count))
    assert (starts.day == 1).all()
    months = (starts.year * 12 + starts.month) - (first.year * 12 + first.month)
    assert months.tolist() == list(range(1, count + 1))
    end = first + pd.offsets.MonthEnd(0)
    ends = pd.DatetimeIndex(Frequency("ME").after(end.value, count))
    assert ends.is_month_end.all()
    years = pd.DatetimeIndex(Frequency("YS-JAN").after(pd.Timestamp(start.year, 1, 1).value, 2))
    assert [y.year for y in years] == [start.year + 1, start.year + 2]


def test_times_off_the_calendar_are_named():
    freq = Frequency("MS")
    times = pd.DatetimeIndex(["2024-01-01", "2024-02-01", "2024-03-15"]).as_unit("ns").asi8
    with pytest.raises(IrregularSeriesError, match=r"2024-03-15T00:00:00Z \(row 2\)"):
        freq.positions(times)


def test_fewer_than_two_times_cannot_be_inferred():
    with pytest.raises(IrregularSeriesError, match="at least two"):
        infer_frequency(np.array([0], dtype=np.int64))


def test_defaults_follow_the_documented_minimums():
    minimums = {a: Frequency(a).defaults().min_rows for a in ("30min", "h", "B", "MS", "QS-JAN")}
    assert minimums == {"30min": 96, "h": 48, "B": 10, "MS": 24, "QS-JAN": 8}
    for alias in ALIASES:
        d = Frequency(alias).defaults()
        assert d.min_rows <= max(2 * d.season, 10)
        assert d.holdout >= d.horizon and d.tiers == tuple(sorted(d.tiers, reverse=True))
