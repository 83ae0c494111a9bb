"""The calendar of a series: its frequency inferred from timestamps, grid positions, and the
times that follow it.

A :class:`Frequency` is a pandas offset alias (``"30min"``, ``"h"``, ``"D"``, ``"B"``,
``"W-SUN"``, ``"MS"``, ``"ME"``, ``"QS-JAN"``, ``"QE-DEC"``, ``"YS-JAN"``, ``"YE-DEC"``...).
Fixed steps (minutes, hours, days) are whole nanosecond multiples; business days, weeks,
months, quarters and years step by calendar arithmetic (pandas offsets), so the step after a
Friday is the Monday after it and the step after 2024-01-31 (``ME``) is 2024-02-29.

Everything is UTC: times are ``int64`` nanoseconds since the epoch, naive inputs read as UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas._libs.tslibs.offsets import BaseOffset
from pandas.tseries.frequencies import to_offset

from forecasting.errors import IrregularSeriesError

__all__ = [
    "NS_PER_DAY",
    "Frequency",
    "FrequencyDefaults",
    "Kind",
    "infer_frequency",
]

NS_PER_DAY = 86_400 * 1_000_000_000
_NS_PER_HOUR = 3_600 * 1_000_000_000
_DAY_NAMES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# A grid this many times longer than the rows it holds is not a series with gaps but a
# mismatch of frequency (or a stray timestamp far away): refused rather than materialized.
_MAX_GRID_PER_ROW = 50
_MAX_GRID_SLACK = 10_000

Kind = Literal["tick", "business", "week", "month", "quarter", "year"]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class FrequencyDefaults:
    """What a frequency implies when the caller does not say (docs/forecasting.md has the
    table): the season in steps, the lag tiers (deepest first; the last is the least history
    a caller may send), the horizon, the holdout rows and the longest gap interpolated."""

    season: int
    tiers: tuple[int, ...]
    horizon: int
    holdout: int
    max_gap_steps: int

    @property
    def min_rows(self) -> int:
        return self.tiers[-1]


@dataclass(frozen=True, slots=True)
class Frequency:
    """A regular calendar, named by its pandas offset alias (see the module docstring)."""

    alias: str
    offset: BaseOffset = field(init=False, repr=False, compare=False)
    kind: Kind = field(init=False, compare=False)
    # The fixed step of a tick frequency; for calendar ones, their typical length.
    nominal_ns: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        try:
            offset = to_offset(self.alias)
        except ValueError as exc:
            raise ValueError(f"unknown frequency {self.alias!r}: {exc}") from None
        object.__setattr__(self, "offset", offset)
        kind, nominal = _kind_of(offset)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "nominal_ns", nominal)

    @classmethod
    def fixed(cls, step_ns: int) -> Frequency:
        """The tick frequency of a fixed step."""
        if step_ns <= 0:
            raise ValueError("a step must be positive")
        return cls(to_offset(pd.Timedelta(step_ns, unit="ns")).freqstr)

    @property
    def step_ns(self) -> int | None:
        """The fixed step in nanoseconds, or None for a calendar frequency."""
        return self.nominal_ns if self.kind == "tick" else None

    def after(self, last_ns: int, count: int) -> IntArray:
        """The ``count`` times that follow ``last_ns`` (a time on this calendar)."""
        if self.step_ns is not None:
            return last_ns + self.step_ns * np.arange(1, count + 1, dtype=np.int64)
        stamps = pd.date_range(start=pd.Timestamp(last_ns), periods=count + 1, freq=self.offset)
        return np.asarray(stamps.as_unit("ns").asi8[1:], dtype=np.int64)

    def positions(self, times_ns: IntArray) -> IntArray:
        """Each time's step count from the first (``times_ns`` sorted and unique).

        Raises :class:`IrregularSeriesError` naming the first time off this calendar.
        """
        t = np.asarray(times_ns, dtype=np.int64)
        if len(t) == 0:
            return np.zeros(0, dtype=np.int64)
        if self.step_ns is not None:
            offsets = t - t[0]
            off = np.flatnonzero(offsets % self.step_ns)
            if len(off):
                raise self._off_grid(t, int(off[0]))
            steps: IntArray = offsets // self.step_ns
            return steps
        span = (int(t[-1]) - int(t[0])) // self.nominal_ns + 2
        if span > _MAX_GRID_PER_ROW * len(t) + _MAX_GRID_SLACK:
            raise IrregularSeriesError(
                f"times from {_iso(int(t[0]))} to {_iso(int(t[-1]))} span about {span} "
                f"{self.alias} steps for {len(t)} rows: too sparse for this frequency",
                len(t) - 1,
            )
        grid = self.grid(int(t[0]), int(t[-1]))
        pos = np.searchsorted(grid, t)
        inside = pos < len(grid)
        match = np.zeros(len(t), dtype=bool)
        match[inside] = grid[pos[inside]] == t[inside]
        off = np.flatnonzero(~match)
        if len(off):
            raise self._off_grid(t, int(off[0]))
        return pos.astype(np.int64)

    def grid(self, first_ns: int, last_ns: int) -> IntArray:
        """Every time of this calendar from ``first_ns`` (on it) to ``last_ns``, inclusive."""
        if self.step_ns is not None:
            return np.arange(first_ns, last_ns + 1, self.step_ns, dtype=np.int64)
        stamps = pd.date_range(
            start=pd.Timestamp(first_ns), end=pd.Timestamp(last_ns), freq=self.offset
        )
        return np.asarray(stamps.as_unit("ns").asi8, dtype=np.int64)

    def on_calendar(self, time_ns: int) -> bool:
        """Whether ``time_ns`` is a time this calendar can hold (ticks: always)."""
        if self.step_ns is not None:
            return True
        return bool(self.offset.is_on_offset(pd.Timestamp(time_ns)))

    def steps_per_day(self) -> int:
        """Steps in a day for a tick frequency dividing a day, else 0."""
        step = self.step_ns
        if step is None or step > NS_PER_DAY or NS_PER_DAY % step:
            return 0
        return NS_PER_DAY // step

    def defaults(self) -> FrequencyDefaults:
        """The defaults this frequency implies (the table in docs/forecasting.md)."""
        return _defaults(self)

    def describe_gap(self, missing: int) -> str:
        return f"{missing} missing {self.alias} step(s)"

    def _off_grid(self, t: IntArray, i: int) -> IrregularSeriesError:
        return IrregularSeriesError(
            f"time {_iso(int(t[i]))} (row {i}) is not on the {self.alias} calendar that "
            f"starts at {_iso(int(t[0]))}",
            i,
        )


_CALENDAR_KINDS: dict[str, tuple[Kind, float]] = {
    "BusinessDay": ("business", 1.0),
    "Week": ("week", 7.0),
    "MonthBegin": ("month", 30.436875),
    "MonthEnd": ("month", 30.436875),
    "QuarterBegin": ("quarter", 91.310625),
    "QuarterEnd": ("quarter", 91.310625),
    "YearBegin": ("year", 365.2425),
    "YearEnd": ("year", 365.2425),
}


def _kind_of(offset: BaseOffset) -> tuple[Kind, int]:
    """The kind of ``offset`` and its (typical) length in nanoseconds."""
    name = type(offset).__name__
    n = int(getattr(offset, "n", 1))
    if isinstance(offset, pd.offsets.Tick):
        return "tick", int(pd.Timedelta(offset).value)
    if name == "Day":  # pandas 3 makes "D" a calendar day, not a Tick; in UTC it is 24 h
        return "tick", n * NS_PER_DAY
    if name not in _CALENDAR_KINDS:
        raise ValueError(f"frequency {offset.freqstr!r} is not supported")
    kind, days = _CALENDAR_KINDS[name]
    return kind, int(n * days * NS_PER_DAY)


def _iso(ns: int) -> str:
    return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="s")) + "Z"


def infer_frequency(times_ns: IntArray) -> Frequency:
    """The frequency of sorted, unique UTC times, gaps allowed.

    Sub-daily times step by the greatest common divisor of their spacings. Times at one time
    of day are month starts or ends, quarters or years (by the months they fall in) when
    every one is the first or last day of its month; weeks when every spacing is whole
    weeks; business days when none falls on a Saturday or Sunday; else days. Raises
    :class:`IrregularSeriesError` for fewer than two times.
    """
    t = np.asarray(times_ns, dtype=np.int64)
    if len(t) < 2:
        raise IrregularSeriesError("at least two distinct times are needed to infer a frequency", 0)
    diffs = np.diff(t)
    if np.any(diffs <= 0):
        raise IrregularSeriesError("times must be sorted and unique", int(np.argmin(diffs > 0)) + 1)
    step = int(reduce(math.gcd, diffs.tolist()))
    time_of_day = t % NS_PER_DAY
    if step % NS_PER_DAY or np.any(time_of_day != time_of_day[0]):
        return Frequency.fixed(step)
    stamps = pd.DatetimeIndex(t.astype("datetime64[ns]"))
    calendar = _monthly(stamps)
    if calendar is not None:
        return calendar
    days = step // NS_PER_DAY
    weekday = (t // NS_PER_DAY + 3) % 7  # Monday 0: 1970-01-01 was a Thursday
    if days % 7 == 0:
        return Frequency(("" if days == 7 else f"{days // 7}") + "W-" + _DAY_NAMES[weekday[0]])
    if days == 1 and not np.any(weekday >= 5):
        return Frequency("B")
    return Frequency.fixed(step)


def _monthly(stamps: pd.DatetimeIndex) -> Frequency | None:
    """Month starts or ends, quarters, years, or None when the days are not all the first
    (or all the last) of their month, or the times are less than a month apart."""
    if stamps.is_month_start.all():
        suffix = "S"
    elif stamps.is_month_end.all():
        suffix = "E"
    else:
        return None
    months = np.asarray(stamps.year * 12 + stamps.month - 1, dtype=np.int64)
    gcd = int(reduce(math.gcd, np.diff(months).tolist()))
    if gcd == 0:
        return None
    first = int(stamps[0].month)
    if gcd % 12 == 0:
        return Frequency(f"Y{suffix}-{_MONTH_NAMES[first - 1]}")
    if gcd % 3 == 0:
        # QS-JAN holds Jan/Apr/Jul/Oct; QE-DEC ends Mar/Jun/Sep/Dec: name the anchor so.
        anchor = (first - 1) % 3 if suffix == "S" else 9 + (first - 1) % 3
        return Frequency(f"Q{suffix}-{_MONTH_NAMES[anchor]}")
    return Frequency(f"M{suffix}")


# season, lag tiers (deepest first), horizon, holdout, longest gap interpolated
_CALENDAR_DEFAULTS: dict[Kind, FrequencyDefaults] = {
    "business": FrequencyDefaults(5, (20, 10), 10, 40, 2),
    "week": FrequencyDefaults(52, (104, 52), 13, 52, 2),
    "month": FrequencyDefaults(12, (60, 24), 12, 48, 1),
    "quarter": FrequencyDefaults(4, (32, 8), 8, 24, 1),
    "year": FrequencyDefaults(1, (30, 10), 6, 24, 1),
}
_DAILY = FrequencyDefaults(7, (28, 14), 14, 56, 2)
_MULTI_DAY = FrequencyDefaults(1, (20, 10), 10, 40, 2)


def _defaults(freq: Frequency) -> FrequencyDefaults:
    if freq.kind in _CALENDAR_DEFAULTS:
        return _CALENDAR_DEFAULTS[freq.kind]
    per_day = freq.steps_per_day()
    if per_day <= 1:  # a day, several days, or a step that does not divide a day
        return _DAILY if per_day == 1 else _MULTI_DAY
    step = freq.nominal_ns
    per_hour = _NS_PER_HOUR // step if _NS_PER_HOUR % step == 0 else 0
    # A daily season up to 96 steps (15 minutes); finer data takes the hour as its season.
    season = per_day if per_day <= 96 or per_hour == 0 else per_hour
    week = 7 * per_day
    full = week if week <= 672 else 4 * season
    gap = max(1, (2 * _NS_PER_HOUR) // step)
    return FrequencyDefaults(
        season=season,
        tiers=(full, 2 * season) if full > 2 * season else (full,),
        horizon=season,
        holdout=2 * full,
        max_gap_steps=int(gap),
    )
