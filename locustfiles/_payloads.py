"""What the load test sends: ``POST /predict`` payloads, valid and invalid, and Kafka events.

Generators build times as integer UTC nanoseconds on a regular grid, check them with
:func:`check_times` (the seed report's load test sent identical timestamps unnoticed) and only
then write them, all in one :class:`Zone` per payload: ``Z``, ``naive`` (read as UTC), a fixed
offset, or an IANA zone (whose offset may change at a DST switch; the UTC step stays constant).
Real series are read once per process (:func:`load_series`) and cut into contiguous windows.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from locustfiles._errors import PayloadError, SeriesError

if TYPE_CHECKING:
    from locustfiles._config import LoadConfig, S3Location

log = logging.getLogger(__name__)
NS = 1_000_000_000
JSON = "application/json"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_START_NS = (946_684_800 * NS, 1_893_456_000 * NS)  # 2000..2030: years the service accepts
# Values shaped after the sample series (half-hourly demand in MW): level, daily swing,
# weekend dip, noise and its autocorrelation.
_LEVEL, _DAILY, _WEEKEND, _NOISE, _AR = 29_600.0, 6_000.0, 4_000.0, 300.0, 0.9


@dataclass(frozen=True, slots=True)
class Zone:
    """How a payload writes its times; ``tz`` is None for ``naive``."""

    name: str
    tz: tzinfo | None


UTC_ZONE = Zone("Z", UTC)


def parse_zone(text: str) -> Zone:
    """``Z``, ``naive``, ``+hh:mm``/``-hh:mm`` or an IANA name; ValueError otherwise."""
    name = text.strip()
    if name in ("Z", "naive"):
        return UTC_ZONE if name == "Z" else Zone(name, None)
    if match := re.fullmatch(r"([+-])(\d{2}):(\d{2})", name):
        delta = timedelta(hours=int(match[2]), minutes=int(match[3]))
        if delta >= timedelta(hours=24) or int(match[3]) >= 60:
            raise ValueError(f"offset {name!r} is out of range")
        return Zone(name, timezone(-delta if match[1] == "-" else delta))
    try:
        return Zone(name, ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not Z, naive, an offset like +05:30 or a known IANA time zone"
        ) from None


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    """A valid ``/predict`` body and what a correct answer to it looks like:
    ``inference_length`` (None: the server's default), the newest input time and the step the
    predictions must keep (None: not known, as for forecasts from the cached window), and the
    quantile levels every prediction must carry."""

    body: dict[str, object]
    inference_length: int | None
    last_time_ns: int | None
    step_ns: int | None
    mode: str
    quantiles: tuple[float, ...] = ()

    def encode(self) -> bytes:
        return _dumps(self.body, nan=False)


@dataclass(frozen=True, slots=True)
class EncodedRequest:
    """A :class:`ForecastRequest` encoded once and re-sent with any ``inference_length``.

    ``bare`` is the JSON of its body without ``inference_length``; ``head`` is the same object
    left open after ``"inference_length":``, so a send only appends the length and ``}``
    instead of encoding the series again (the load generator's CPU is the server's too)."""

    request: ForecastRequest
    bare: bytes
    head: bytes

    @classmethod
    def of(cls, req: ForecastRequest) -> EncodedRequest:
        rest = {key: value for key, value in req.body.items() if key != "inference_length"}
        bare = _dumps(rest, nan=False)
        return cls(req, bare, bare[:-1] + (b"," if rest else b"") + b'"inference_length":')

    def with_length(self, length: int | None) -> tuple[ForecastRequest, bytes]:
        """The request for ``length`` predictions (None: the server's default, no field) and
        its body, the bytes a fresh :meth:`ForecastRequest.encode` would parse back to."""
        body = {key: value for key, value in self.request.body.items() if key != "inference_length"}
        if length is None:
            return replace(self.request, body=body, inference_length=None), self.bare
        body["inference_length"] = length
        req = replace(self.request, body=body, inference_length=length)
        return req, b"%s%d}" % (self.head, length)


def check_times(times_ns: Sequence[int], step_ns: int) -> None:
    """Raise :class:`PayloadError` unless the times are unique, strictly increasing and
    exactly ``step_ns`` apart; the message says how the series is broken."""
    if step_ns <= 0:
        raise PayloadError(f"the step must be positive, got {step_ns} ns")
    if len(times_ns) > 1 and times_ns[0] == times_ns[-1]:
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
    delta = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - _EPOCH
    return delta // timedelta(microseconds=1) * 1000


def format_times(times_ns: Sequence[int], zone: Zone) -> list[str]:
    """ISO-8601 strings of UTC nanosecond times, all written in ``zone`` (microseconds)."""
    moments = [_EPOCH + timedelta(microseconds=ns // 1000) for ns in times_ns]
    if zone.tz is None or zone.name == "Z":
        suffix = "" if zone.tz is None else "Z"
        return [m.replace(tzinfo=None).isoformat() + suffix for m in moments]
    return [m.astimezone(zone.tz).isoformat() for m in moments]


def seasonal_values(times_ns: Sequence[int], rng: random.Random) -> list[float]:
    """Demand-like values, always finite and positive: a level, a daily cycle (lowest at
    04:00 UTC), lower weekends and autocorrelated noise."""
    out, noise = [], 0.0
    for ns in times_ns:
        hours = (ns / (3600 * NS)) % 24.0
        weekend = (ns // (86_400 * NS) + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        noise = _AR * noise + rng.gauss(0.0, _NOISE)
        daily = _DAILY * math.cos(2.0 * math.pi * (hours - 4.0) / 24.0)
        out.append(round(max(_LEVEL - daily - (_WEEKEND if weekend else 0.0) + noise, 1.0), 1))
    return out


def _dumps(body: object, *, nan: bool) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=nan).encode()


def series_body(
    column: str, times: list[str], values: Sequence[object], length: int, **extra: object
) -> dict[str, object]:
    data = {"time": times, column: list(values)}
    return {"index_col": "time", "data": data, "inference_length": length, **extra}


def synthetic_request(
    rng: random.Random,
    *,
    rows: int,
    step_ns: int,
    zone: Zone,
    column: str,
    inference_length: int,
    start_ns: int | None = None,
) -> ForecastRequest:
    """A synthetic series of ``rows`` rows every ``step_ns``, written in ``zone``, starting
    at ``start_ns`` or else at a random time on the step's grid in 2000..2029."""
    check_times([], step_ns)  # the step first: the start is drawn on its grid
    if rows < 1:
        raise PayloadError(f"rows must be at least 1, got {rows}")
    if start_ns is None:
        start_ns = rng.randrange(_START_NS[0] // step_ns, _START_NS[1] // step_ns) * step_ns
    times = [start_ns + i * step_ns for i in range(rows)]
    check_times(times, step_ns)
    values = seasonal_values(times, rng)
    body = series_body(column, format_times(times, zone), values, inference_length)
    return ForecastRequest(body, inference_length, times[-1], step_ns, "synthetic")


def cached_request(inference_length: int | None) -> ForecastRequest:
    """``{}`` (the server's default length) or ``{"inference_length": k}``."""
    body = {} if inference_length is None else {"inference_length": inference_length}
    return ForecastRequest(dict(body), inference_length, None, None, "cached")


# The interval requests of the quantiles mode: a central 80 % interval, a wide one with its
# median, and levels written out of order.
QUANTILE_SETS = ((0.1, 0.9), (0.025, 0.5, 0.975), (0.9, 0.05, 0.25, 0.75, 0.95))


def quantile_request(levels: tuple[float, ...]) -> ForecastRequest:
    """``{"quantiles": [...]}``: the window's forecast with those interval bounds."""
    return ForecastRequest({"quantiles": list(levels)}, None, None, None, "quantiles", levels)


def series_request(series_id: str, inference_length: int | None) -> ForecastRequest:
    """``{"series_id": id}`` (the server's default length) or with ``inference_length``:
    a forecast of one series of the window (the answer must name it)."""
    body: dict[str, object] = {"series_id": series_id}
    if inference_length is not None:
        body["inference_length"] = inference_length
    return ForecastRequest(body, inference_length, None, None, "series")


def ingest_event(time_ns: int, value: float, column: str) -> bytes:
    """One Kafka record as the daemon decodes it: ``{"time": "...Z", "<column>": value}``;
    ValueError for a value that is not finite."""
    return _dumps({"time": format_times([time_ns], UTC_ZONE)[0], column: value}, nan=False)


@dataclass(frozen=True, slots=True)
class BadCase:
    """One invalid request (``name`` is also its stats label) and the documented answer:
    ``status`` and, for a 422, the field error ``code`` the problem body must list."""

    name: str
    body: bytes
    content_type: str
    status: int
    code: str | None


def bad_cases(
    *, rows: int, step_ns: int, column: str, max_rows: int, max_body_bytes: int
) -> tuple[BadCase, ...]:
    """Every invalid case of the service's contract, each breaking exactly one thing of a
    valid series of ``rows`` rows. ``max_rows``/``max_body_bytes`` are the server's limits;
    too-many-rows is left out when its body would exceed the byte limit (a rightful 413)."""
    rng = random.Random(rows * 7919 + step_ns)
    base = synthetic_request(
        rng, rows=rows, step_ns=step_ns, zone=UTC_ZONE, column=column, inference_length=1
    )
    data = base.body["data"]
    assert isinstance(data, dict)
    t: list[str] = data["time"]
    v: list[float] = data[column]
    last, mid = base.last_time_ns or 0, rows // 2

    def body(times: list[str], values: Sequence[object], **extra: object) -> dict[str, object]:
        return series_body(column, times, values, 1, **extra)

    def at_mid(text: str) -> list[str]:
        return [*t[:mid], text, *t[mid + 1 :]]

    invalid: dict[str, tuple[object, str]] = {
        "identical_timestamps": (body([t[0]] * rows, v), "duplicate_timestamps"),
        "duplicate_timestamp": (body(at_mid(t[mid - 1]), v), "duplicate_timestamps"),
        "unparseable_time": (body(at_mid("yesterday"), v), "unparseable_time"),
        "mixed_timezones": (body(at_mid(t[mid].removesuffix("Z")), v), "mixed_timezones"),
        "off_grid_time": (
            body([*t[:-1], *format_times([last - step_ns // 2], UTC_ZONE)], v),
            "irregular_spacing",
        ),
        "too_few_rows": (body(t[:3], v[:3]), "too_few_rows"),
        "missing_column": (body(t, v, data={"time": t}), "missing_column"),
        "unknown_column": (body(t, v, data={"time": t, column: v, "extra": v}), "unknown_column"),
        "non_numeric_value": (body(t, [*v[:-1], "12.5"]), "not_a_number"),
        "nan_value": (body(t, [*v[:-1], math.nan]), "not_finite"),
        "infinite_value": (body(t, [math.inf, *v[1:]]), "not_finite"),
        "length_mismatch": (body(t, v[:-1]), "length_mismatch"),
        "inference_length_zero": (body(t, v, inference_length=0), "out_of_range"),
        "inference_length_string": ({"inference_length": "3"}, "not_an_integer"),
        "unknown_field": ({"inference_length": 1, "horizon": 3}, "unknown_field"),
        "index_col_without_data": ({"index_col": "time"}, "requires_data"),
        "not_an_object": ([1, 2, 3], "not_an_object"),
    }
    # NaN and Infinity are not JSON, but clients send them: the server must name the field.
    cases = [BadCase(k, _dumps(b, nan=True), JSON, 422, code) for k, (b, code) in invalid.items()]
    cases += [
        BadCase("bad_json", b'{"inference_length": ', JSON, 400, None),
        BadCase("wrong_content_type", b"{}", "text/plain", 415, None),
        BadCase("body_too_large", b'{"pad":"' + b"x" * max_body_bytes + b'"}', JSON, 413, None),
    ]
    first, many = last - (rows - 1) * step_ns, max_rows + 1
    big_times = format_times([first + i * step_ns for i in range(many)], UTC_ZONE)
    big = _dumps(body(big_times, [1000.0] * many), nan=False)
    if len(big) <= max_body_bytes:
        cases.append(BadCase("too_many_rows", big, JSON, 422, "too_many_rows"))
    return tuple(cases)


@dataclass(frozen=True, eq=False)
class Series:
    """UTC nanosecond times and one value column. ``runs`` are the maximal ``[start, stop)``
    stretches exactly ``step_ns`` apart: windows stay inside one, so no gap reaches a payload.
    """

    column: str
    times_ns: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    step_ns: int
    runs: tuple[tuple[int, int], ...]

    @classmethod
    def from_arrays(
        cls, times_ns: npt.NDArray[np.int64], values: npt.NDArray[np.float64], column: str
    ) -> Series:
        """Sorted by time; :class:`SeriesError` for fewer than two rows, a non-finite value
        or a repeated timestamp."""
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
        edges = [0, *(np.flatnonzero(diffs != step) + 1).tolist(), len(times)]
        return cls(column, times, vals, step, tuple(itertools.pairwise(edges)))

    @property
    def longest_run(self) -> int:
        return max(b - a for a, b in self.runs)


def real_request(
    series: Series, rng: random.Random, *, rows: int, inference_length: int
) -> ForecastRequest:
    """A contiguous window of ``rows`` rows (never a random sample, which would break the
    frequency), times in UTC with ``Z``."""
    runs = [(a, b) for a, b in series.runs if b - a >= rows]
    if rows < 1 or not runs:
        raise SeriesError(
            f"no contiguous stretch of {rows} rows in the series (longest: {series.longest_run})"
        )
    a, b = rng.choices(runs, weights=[b - a - rows + 1 for a, b in runs])[0]
    start = rng.randrange(a, b - rows + 1)
    times = series.times_ns[start : start + rows].tolist()
    check_times(times, series.step_ns)
    values = series.values[start : start + rows].tolist()
    body = series_body(series.column, format_times(times, UTC_ZONE), values, inference_length)
    return ForecastRequest(body, inference_length, times[-1], series.step_ns, "real")


def load_series(config: LoadConfig) -> Series:
    """The configured series: the S3 object when ``config.s3`` is set, else the local file;
    :class:`SeriesError` says what is missing or unreadable."""
    s3 = config.s3
    where = f"s3://{s3.bucket}/{s3.key}" if s3 else str(config.series_path)
    try:
        table = pq.read_table(pa.BufferReader(_fetch(s3)) if s3 else config.series_path)
        times, values = table.column("time"), table.column(config.column)
        if times.null_count or not pa.types.is_timestamp(times.type):
            raise SeriesError(f"column 'time' is {times.type} with {times.null_count} missing")
        # Naive timestamps are UTC by convention; aware ones are stored as UTC already.
        ns = pc.cast(times, pa.timestamp("ns", tz=times.type.tz)).cast(pa.int64()).to_numpy()
        floats = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
    except (KeyError, OSError, pa.ArrowException) as exc:
        raise SeriesError(f"cannot read the series from {where}: {exc}") from None
    series = Series.from_arrays(ns, floats, config.column)
    log.info(
        "real series loaded from %s: %d rows, step %g s, longest contiguous stretch %d rows",
        where,
        len(series.times_ns),
        series.step_ns / 1e9,
        series.longest_run,
    )
    return series


def _fetch(s3: S3Location) -> bytes:
    # Imported here: minio pulls in urllib3/ssl, which must come after Locust's gevent patch.
    import urllib3  # noqa: PLC0415
    from minio import Minio  # noqa: PLC0415
    from minio.error import MinioException  # noqa: PLC0415

    http = urllib3.PoolManager(timeout=10.0, retries=urllib3.Retry(total=2, backoff_factor=0.2))
    client = Minio(
        endpoint=s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.secure,
        region=s3.region,
        http_client=http,
    )
    response = None
    try:
        response = client.get_object(bucket_name=s3.bucket, object_name=s3.key)
        return bytes(response.read())
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        where = f"s3://{s3.bucket}/{s3.key} from {s3.endpoint}"
        raise SeriesError(f"cannot fetch {where}: {exc}") from None
    finally:
        if response is not None:
            response.close()
            response.release_conn()
        http.clear()
