"""Coherent time-series payloads for ``POST /predict`` (pure logic: no Locust, no I/O).

Every generator builds timestamps as integer nanoseconds on a regular grid, checks them with
:func:`check_times` (unique, strictly increasing, one constant step) and only then formats
them, all in one time zone. The seed report's load test failed because its generator sent
identical timestamps and nothing looked at the payloads; here a generator that would do that
raises :class:`~locustfiles.errors.PayloadError` instead of sending.

Times are formatted as ISO-8601 in one :class:`Zone` per payload: ``Z`` (UTC), ``naive`` (no
offset, which the service reads as UTC), a fixed offset such as ``+05:30``, or an IANA zone
such as ``Europe/London`` (whose offset may change inside a series at a DST switch; the UTC
step stays constant, which is what the service checks).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt

from locustfiles.errors import PayloadError, SeriesError

__all__ = [
    "UTC_ZONE",
    "ForecastRequest",
    "Series",
    "Zone",
    "cached_request",
    "check_times",
    "format_times",
    "ingest_event",
    "parse_time_ns",
    "parse_zone",
    "real_request",
    "seasonal_values",
    "synthetic_request",
]

NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSET = re.compile(r"\A([+-])(\d{2}):(\d{2})\Z")
# Synthetic series start somewhere in 2000..2029: far inside the service's accepted years.
_START_MIN_NS = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp()) * NS
_START_MAX_NS = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp()) * NS
# Shape of the synthetic values, after the sample series (half-hourly demand in MW).
_LEVEL, _DAILY, _WEEKEND, _NOISE, _AR = 29_600.0, 6_000.0, 4_000.0, 300.0, 0.9


@dataclass(frozen=True, slots=True)
class Zone:
    """How a payload writes its times. ``tz`` is None for ``naive`` (no offset = UTC)."""

    name: str
    tz: tzinfo | None


UTC_ZONE = Zone("Z", UTC)


def parse_zone(text: str) -> Zone:
    """``Z``, ``naive``, ``+hh:mm``/``-hh:mm`` or an IANA name; ValueError otherwise."""
    name = text.strip()
    if name == "Z":
        return UTC_ZONE
    if name == "naive":
        return Zone("naive", None)
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24) or int(minutes) >= 60:
            raise ValueError(f"offset {name!r} is out of range")
        return Zone(name, timezone(-delta if sign == "-" else delta))
    try:
        return Zone(name, ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not Z, naive, an offset like +05:30 or a known IANA time zone"
        ) from None


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    """A valid ``/predict`` body and what a correct answer to it looks like.

    ``inference_length`` None means the body asks for the server's default length;
    ``last_time_ns`` is the newest input time (None for a forecast from the cached window);
    ``step_ns`` the spacing predictions must have (None when not known).
    """

    body: dict[str, object]
    inference_length: int | None
    last_time_ns: int | None
    step_ns: int | None
    mode: str

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), allow_nan=False).encode()


def check_times(times_ns: Sequence[int], step_ns: int) -> None:
    """Raise :class:`PayloadError` unless the times are unique, strictly increasing and
    spaced by exactly ``step_ns``. The message says how the series is broken."""
    if step_ns <= 0:
        raise PayloadError(f"the step must be positive, got {step_ns} ns")
    if len(times_ns) < 2:
        return
    if times_ns[0] == times_ns[-1]:
        raise PayloadError(
            f"all {len(times_ns)} timestamps are identical ({times_ns[0]} ns): a series needs "
            "one time per row (the seed report's bug)"
        )
    for i in range(1, len(times_ns)):
        diff = times_ns[i] - times_ns[i - 1]
        if diff <= 0:
            raise PayloadError(f"timestamps are not strictly increasing at row {i} ({diff} ns)")
        if diff != step_ns:
            raise PayloadError(f"spacing at row {i} is {diff} ns, not the step {step_ns} ns")


def parse_time_ns(text: object) -> int | None:
    """UTC nanoseconds of an ISO-8601 string (no offset = UTC), or None if it is not one."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000


def format_times(times_ns: Sequence[int], zone: Zone) -> list[str]:
    """ISO-8601 strings of UTC nanosecond times, all written in ``zone`` (microsecond
    resolution; whole seconds print without a fraction)."""
    out: list[str] = []
    for ns in times_ns:
        moment = _EPOCH + timedelta(microseconds=ns // 1000)
        if zone.tz is None:
            out.append(moment.replace(tzinfo=None).isoformat())
        elif zone.name == "Z":
            out.append(moment.replace(tzinfo=None).isoformat() + "Z")
        else:
            out.append(moment.astimezone(zone.tz).isoformat())
    return out


def seasonal_values(times_ns: Sequence[int], rng: random.Random) -> list[float]:
    """Demand-like values: a level, a daily cycle (low at 04:00 UTC), lower weekends and
    autocorrelated noise. Always finite and positive."""
    out: list[float] = []
    noise = 0.0
    for ns in times_ns:
        hours = (ns / (3600 * NS)) % 24.0
        weekday = (ns // (86_400 * NS) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        noise = _AR * noise + rng.gauss(0.0, _NOISE)
        value = (
            _LEVEL
            - _DAILY * math.cos(2.0 * math.pi * (hours - 4.0) / 24.0)
            - (_WEEKEND if weekday >= 5 else 0.0)
            + noise
        )
        out.append(round(max(value, 1.0), 1))
    return out


def _series_body(
    index_col: str, column: str, times: list[str], values: list[float], length: int
) -> dict[str, object]:
    return {
        "index_col": index_col,
        "data": {index_col: times, column: values},
        "inference_length": length,
    }


def synthetic_request(
    rng: random.Random,
    *,
    rows: int,
    step_ns: int,
    zone: Zone,
    column: str,
    inference_length: int,
    index_col: str = "time",
    start_ns: int | None = None,
) -> ForecastRequest:
    """A synthetic series of ``rows`` rows every ``step_ns``, written in ``zone``, starting
    at ``start_ns`` or else at a random time on the step's grid in 2000..2029."""
    if rows < 1:
        raise PayloadError(f"rows must be at least 1, got {rows}")
    if step_ns <= 0:
        raise PayloadError(f"the step must be positive, got {step_ns} ns")
    if start_ns is None:
        start_ns = rng.randrange(_START_MIN_NS // step_ns, _START_MAX_NS // step_ns) * step_ns
    times = [start_ns + i * step_ns for i in range(rows)]
    check_times(times, step_ns)
    body = _series_body(
        index_col, column, format_times(times, zone), seasonal_values(times, rng), inference_length
    )
    return ForecastRequest(body, inference_length, times[-1], step_ns, "synthetic")


def cached_request(inference_length: int | None) -> ForecastRequest:
    """``{}`` (the server's default length) or ``{"inference_length": k}``."""
    body: dict[str, object] = (
        {} if inference_length is None else {"inference_length": inference_length}
    )
    return ForecastRequest(body, inference_length, None, None, "cached")


Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Series:
    """A real series for ``real`` payloads: UTC nanosecond times, one value column.

    ``runs`` are the maximal ``[start, stop)`` stretches spaced by exactly ``step_ns``:
    windows are cut inside one run, so a gap in the source never reaches a payload.
    """

    column: str
    times_ns: Int64Array
    values: Float64Array
    step_ns: int
    runs: tuple[tuple[int, int], ...]

    @classmethod
    def from_arrays(cls, times_ns: Int64Array, values: Float64Array, column: str) -> Series:
        """Sort by time; raise :class:`SeriesError` for duplicates, non-finite values or
        fewer than two rows."""
        times = np.asarray(times_ns, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        if len(times) != len(vals) or len(times) < 2:
            raise SeriesError(f"the series needs at least two rows of time and {column!r}")
        if not np.all(np.isfinite(vals)):
            bad = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise SeriesError(f"{column!r} has a missing or non-finite value at row {bad}")
        order = np.argsort(times, kind="stable")
        times, vals = times[order], vals[order]
        diffs = np.diff(times)
        if np.any(diffs == 0):
            raise SeriesError(
                f"the series repeats the timestamp at sorted row {int(np.argmin(diffs)) + 1}"
            )
        step = int(np.median(diffs))
        breaks = np.flatnonzero(diffs != step) + 1
        edges = [0, *breaks.tolist(), len(times)]
        runs = tuple(itertools.pairwise(edges))
        return cls(column, times, vals, step, runs)

    @property
    def longest_run(self) -> int:
        return max(b - a for a, b in self.runs)


def real_request(
    series: Series,
    rng: random.Random,
    *,
    rows: int,
    inference_length: int,
    index_col: str = "time",
) -> ForecastRequest:
    """A contiguous window of ``rows`` rows of ``series`` (never a random sample, which
    would break the frequency), times in UTC with ``Z``."""
    runs = [(a, b) for a, b in series.runs if b - a >= rows]
    if rows < 1 or not runs:
        raise SeriesError(
            f"no contiguous stretch of {rows} rows in the series (longest: {series.longest_run})"
        )
    weights = [b - a - rows + 1 for a, b in runs]
    a, b = rng.choices(runs, weights=weights)[0]
    start = rng.randrange(a, b - rows + 1)
    times = series.times_ns[start : start + rows].tolist()
    check_times(times, series.step_ns)
    values = series.values[start : start + rows].tolist()
    body = _series_body(
        index_col, series.column, format_times(times, UTC_ZONE), values, inference_length
    )
    return ForecastRequest(body, inference_length, times[-1], series.step_ns, "real")


def ingest_event(time_ns: int, value: float, column: str) -> bytes:
    """One Kafka record as the daemon decodes it: ``{"time": "...Z", "<column>": value}``."""
    if not math.isfinite(value):
        raise PayloadError(f"an event value must be finite, got {value}")
    event = {"time": format_times([time_ns], UTC_ZONE)[0], column: value}
    return json.dumps(event, separators=(",", ":")).encode()
