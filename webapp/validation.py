"""Decoding and validation of ``POST /predict`` bodies (pure logic, no Flask, no I/O).

:func:`decode_json` turns bytes into a JSON value or raises a 400 :class:`ProblemError`;
:func:`parse_predict` checks that value against what the loaded model needs and returns a
:class:`PredictRequest`, or raises a 422 :class:`ProblemError` listing every field error found.
Work is bounded before it is done: row counts are checked before any element is parsed,
field errors are built only up to the cut of :data:`_MAX_ERRORS` (beyond it they are only
counted), and no client value is ever walked recursively, so the cost of refusing any body
stays within a small multiple of the cost of accepting a valid body of the same size.
"""

from __future__ import annotations

import gc
import json
import math
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import filterfalse, islice

import msgspec
import numpy as np
import numpy.typing as npt

from contract.series import SeriesIdError, check_series_id
from forecasting import Frequency, IrregularSeriesError, regularize
from forecasting.features import FloatArray, IntArray
from webapp.errors import FieldError, ProblemError
from webapp.isotimes import parse_uniform
from webapp.schemas import MAX_NAME, MAX_QUANTILES, PREDICT_FIELDS
from webapp.timefmt import format_times

__all__ = [
    "Expectations",
    "PredictRequest",
    "check_forecast",
    "decode_json",
    "in_range",
    "parse_predict",
    "quantile_key",
    "regular_series",
    "validation_problem",
]

_FIELDS = PREDICT_FIELDS
_MAX_LISTED = 5
_MAX_ERRORS = 20
_MAX_NAME = MAX_NAME
# Inside datetime64[ns] (1677..2262) with room for a forecast horizon after the last time.
_MIN_NS = int(datetime(1700, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
_MAX_NS = int(datetime(2200, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Expectations:
    """What a body must satisfy, from the settings and the loaded model."""

    columns: tuple[str, ...]
    min_rows: int
    step_ns: int
    max_rows: int
    max_inference_length: int
    default_inference_length: int
    max_gap_steps: int
    # The model's calendar; None: a fixed step of ``step_ns``.
    frequency: Frequency | None = None
    # The index column of a body that names none: the model's time column.
    index_col: str = "time"


@dataclass(frozen=True, slots=True)
class PredictRequest:
    """A valid request. ``times_ns``/``values`` are None for a forecast from the cached window;
    otherwise they are the caller's series regularized (sorted, unique, on the model's grid,
    allowed gaps interpolated) with ``values`` the single model column, ready for the model
    as they are: nothing after validation regularizes them again. ``series_id`` is the id
    the body gives (a valid id, see :func:`contract.series.check_series_id`), else None;
    whether the window holds it is for the caller to find out."""

    inference_length: int
    times_ns: IntArray | None = None
    values: FloatArray | None = None
    quantiles: tuple[float, ...] = ()
    series_id: str | None = None


class _DuplicateKeyError(ValueError):
    """A JSON object repeats a key."""


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)  # C speed; the per-pair Python loop only runs to name a duplicate
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(f"duplicate key {_name(key)!r} in a JSON object")
            seen.add(key)
    return out


def _keep_constant(name: str) -> float:
    # NaN/Infinity are not JSON; decode them so validation can name the field they are in.
    return float(name)


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = [True]


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding.

    Decoded JSON holds no reference cycles, so the collector can free nothing made while
    decoding; but each container allocated counts towards a collection, and collections
    traverse every young container. A megabyte of ``[[],[],...]`` cost 20x its decoding time
    in collections. Overlapping threads share one pause: the first in disables the collector,
    the last out restores it as the first found it.
    """
    global _gc_pauses  # noqa: PLW0603 (one count per process, changed under its lock)
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled[0] = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled[0]:
                gc.enable()


def decode_json(raw: bytes) -> object:
    """Decode a UTF-8 JSON body; raise a 400 ``invalid-json`` :class:`ProblemError` otherwise.

    Details name the problem in the client's terms, never Python's (no interpreter settings).
    """
    try:
        text = raw.decode("utf-8")
        with _cyclic_gc_paused():
            return json.loads(
                text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_keep_constant
            )
    except UnicodeDecodeError as exc:
        detail = f"body is not UTF-8 (byte {exc.start})"
    except json.JSONDecodeError as exc:
        detail = f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except _DuplicateKeyError as exc:
        detail = f"body is not valid JSON: {exc}"
    except ValueError:
        # The one other ValueError json.loads raises: an integer literal longer than the
        # interpreter converts (checked before any conversion work, so it costs nothing).
        detail = f"an integer in the body has more than {sys.get_int_max_str_digits()} digits"
    except RecursionError:
        detail = "body is not valid JSON: nested too deeply"
    raise ProblemError(400, "invalid-json", "Malformed JSON body", detail)


class _Errors:
    """Field errors in the order found: the first :data:`_MAX_ERRORS` are kept, the rest
    only counted, so a body with a million bad keys costs a count, not a million errors."""

    __slots__ = ("listed", "total")

    def __init__(self) -> None:
        self.listed: list[FieldError] = []
        self.total = 0

    def __bool__(self) -> bool:
        return self.total > 0

    def append(self, error: FieldError) -> None:
        self.add(1, (error,))

    def add(self, count: int, errors: Iterable[FieldError]) -> None:
        """Count ``count`` errors; build (iterate) only as many of ``errors`` as fit."""
        room = _MAX_ERRORS - len(self.listed)
        if room > 0:
            self.listed.extend(islice(errors, min(room, count)))
        self.total += count


def _type_name(value: object) -> str:
    if isinstance(value, msgspec.Raw):
        value = _opened(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _name(key: str) -> str:
    """A client-chosen name, cut so that error bodies stay small."""
    return key if len(key) <= _MAX_NAME else key[: _MAX_NAME - 3] + "..."


def _short(value: object) -> str:
    """A bounded description of a client value, never walking into it (an array nested a
    thousand deep must not recurse, a megabyte string must not be copied)."""
    if isinstance(value, msgspec.Raw):
        return _short(_opened(value))
    if isinstance(value, list):
        return f"an array of {len(value)} item(s)"
    if isinstance(value, dict):
        return f"an object of {len(value)} key(s)"
    if isinstance(value, str):
        text = json.dumps(value[:40])
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        text = f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    else:
        text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _opened(value: msgspec.Raw) -> object:
    """A value left encoded by a shallow decode, opened one level: containers with their
    items still encoded (their size is what an error shows), scalars exactly as
    :func:`decode_json` reads them."""
    head = memoryview(value)[:1].tobytes()
    if head == b"[":
        return msgspec.json.decode(value, type=list[msgspec.Raw])
    if head == b"{":
        return msgspec.json.decode(value, type=dict[str, msgspec.Raw])
    return json.loads(bytes(value), parse_constant=_keep_constant)


def _parse_length(body: dict[str, object], expect: Expectations, errors: _Errors) -> int:
    if "inference_length" not in body:
        return min(expect.default_inference_length, expect.max_inference_length)
    raw = body["inference_length"]
    if isinstance(raw, bool) or not isinstance(raw, int):
        errors.append(
            FieldError(
                "inference_length",
                "not_an_integer",
                f"inference_length must be an integer, got {_type_name(raw)} {_short(raw)}",
            )
        )
        return 0
    if not 1 <= raw <= expect.max_inference_length:
        errors.append(
            FieldError(
                "inference_length",
                "out_of_range",
                f"inference_length must be between 1 and {expect.max_inference_length}, got {raw}",
            )
        )
    return raw


def _parse_series_id(body: dict[str, object], errors: _Errors) -> str | None:
    if "series_id" not in body:
        return None
    raw = body["series_id"]
    if not isinstance(raw, str):
        errors.append(
            FieldError(
                "series_id",
                "not_a_string",
                f"series_id must be a string, got {_type_name(raw)} {_short(raw)}",
            )
        )
        return None
    try:
        return check_series_id(raw)
    except SeriesIdError as exc:
        errors.append(FieldError("series_id", "invalid_series_id", exc.detail))
        return None


def _parse_time(text: object) -> datetime | None:
    if not isinstance(text, str) or len(text) > 64:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _to_ns(moment: datetime) -> int:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    delta = aware - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _parse_times(field: str, raw: list[object], errors: _Errors) -> IntArray | None:
    uniform = _parse_uniform(raw)
    if uniform is not None:
        return uniform
    ns, bad, aware = _times_one_by_one(raw)
    bad_rows = np.flatnonzero(bad)
    if len(bad_rows):
        first = bad_rows[:_MAX_LISTED].tolist()
        shown = ", ".join(f"[{i}] {_short(raw[i])}" for i in first)
        errors.append(
            FieldError(
                f"{field}[{first[0]}]",
                "unparseable_time",
                f"{len(bad_rows)} value(s) are not ISO-8601 times between years 1700 and 2199: "
                f"{shown}",
            )
        )
        return None
    aware_rows, naive_rows = np.flatnonzero(aware), np.flatnonzero(~aware)
    if len(aware_rows) and len(naive_rows):
        one, other = int(aware_rows[0]), int(naive_rows[0])
        errors.append(
            FieldError(
                f"{field}[{max(one, other)}]",
                "mixed_timezones",
                f"times mix UTC offsets and no offset (row {one} has one, row {other} "
                "does not); give every time an offset, or none (read as UTC)",
            )
        )
        return None
    return ns


_Parsed = tuple[int, bool, bool]  # nanoseconds, refused, has an offset


def _one_time(item: object) -> _Parsed:
    moment = _parse_time(item)
    if moment is None:
        return 0, True, False
    ns = _to_ns(moment)
    if not _MIN_NS <= ns < _MAX_NS:
        return 0, True, moment.utcoffset() is not None
    return ns, False, moment.utcoffset() is not None


def _times_one_by_one(
    raw: list[object],
) -> tuple[IntArray, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Each item as ``datetime.fromisoformat`` reads it: instants, refused, with an offset.
    A column of strings is parsed once per distinct string (a body may repeat one bad time
    ten thousand times); the rows then take their string's result with array indexing."""
    if set(map(type, raw)) == {str}:
        distinct = {text: k for k, text in enumerate(dict.fromkeys(raw))}
        parsed = [_one_time(text) for text in distinct]
        codes = np.fromiter(map(distinct.__getitem__, raw), dtype=np.intp, count=len(raw))
    else:
        parsed = [_one_time(item) for item in raw]
        codes = np.arange(len(raw))
    ns = np.array([p[0] for p in parsed], dtype=np.int64)[codes]
    bad = np.array([p[1] for p in parsed], dtype=bool)[codes]
    aware = np.array([p[2] for p in parsed], dtype=bool)[codes]
    return ns, bad, aware


def _parse_uniform(raw: list[object]) -> IntArray | None:
    """The times of a column whose strings share one shape, parsed at once (see
    :mod:`webapp.isotimes`), when all are in range; else None (parse one by one)."""
    parsed = parse_uniform(raw)
    if parsed is None or not in_range(parsed.ns):
        return None
    return parsed.ns


def in_range(times_ns: IntArray) -> bool:
    """Whether every time lies in the years validation accepts (1700 to 2199, UTC)."""
    return bool(len(times_ns)) and int(times_ns.min()) >= _MIN_NS and int(times_ns.max()) < _MAX_NS


def _parse_values(field: str, raw: list[object], errors: _Errors) -> FloatArray | None:
    kinds = set(map(type, raw))
    if kinds == {float}:  # the common case, checked with array operations
        values = np.asarray(raw, dtype=np.float64)
        nonfinite_rows = np.flatnonzero(~np.isfinite(values))
        if not len(nonfinite_rows):
            return values
        _not_finite(field, raw, nonfinite_rows[:_MAX_LISTED].tolist(), len(nonfinite_rows), errors)
        return None
    if kinds == {int} and _fit_int64(raw):  # every one far below 1e300
        return np.asarray(raw, dtype=np.float64)
    bad = [i for i, x in enumerate(raw) if type(x) is not float and type(x) is not int]
    if bad:
        shown = ", ".join(f"[{i}] {_short(raw[i])}" for i in bad[:_MAX_LISTED])
        errors.append(
            FieldError(
                f"{field}[{bad[0]}]",
                "not_a_number",
                f"{len(bad)} value(s) are not numbers: {shown}",
            )
        )
        return None
    nonfinite = [
        i
        for i, x in enumerate(raw)
        if (type(x) is float and not math.isfinite(x)) or (type(x) is int and abs(x) > 1e300)
    ]
    if nonfinite:
        _not_finite(field, raw, nonfinite[:_MAX_LISTED], len(nonfinite), errors)
        return None
    return np.asarray(raw, dtype=np.float64)


def _fit_int64(raw: list[object]) -> bool:
    try:
        np.asarray(raw, dtype=np.int64)
    except OverflowError:
        return False
    return True


def _not_finite(
    field: str, raw: list[object], first: list[int], count: int, errors: _Errors
) -> None:
    shown = ", ".join(f"[{i}] {_short(raw[i])}" for i in first)
    errors.append(
        FieldError(
            f"{field}[{first[0]}]",
            "not_finite",
            f"{count} value(s) are NaN, infinite or out of range: {shown}",
        )
    )


def _parse_data(
    body: dict[str, object], expect: Expectations, errors: _Errors
) -> tuple[IntArray, FloatArray] | None:
    index_col = body.get("index_col", expect.index_col)
    if not isinstance(index_col, str) or not 0 < len(index_col) <= _MAX_NAME:
        errors.append(
            FieldError(
                "index_col",
                "not_a_string",
                f"index_col must be a string of 1 to {_MAX_NAME} characters",
            )
        )
        return None
    columns = _columns(body["data"], index_col, expect, errors)
    if columns is None or not _counts_ok(columns, index_col, expect, errors):
        return None
    return _series(columns, index_col, expect, errors)


def _columns(
    data: object, index_col: str, expect: Expectations, errors: _Errors
) -> dict[str, list[object]] | None:
    if not isinstance(data, dict):
        errors.append(
            FieldError(
                "data",
                "not_an_object",
                f"data must be an object of column name -> array, got {_type_name(data)}",
            )
        )
        return None
    wanted = (index_col, *expect.columns)
    before = errors.total
    missing = [col for col in wanted if col not in data]
    errors.add(
        len(missing),
        (
            FieldError(
                f"data.{col}",
                "missing_column",
                f"column {col!r} is missing; data must have exactly {list(wanted)}",
            )
            for col in missing
        ),
    )
    unknown = filterfalse(wanted.__contains__, data)
    errors.add(
        len(data) - sum(1 for col in set(wanted) if col in data),
        (
            FieldError(
                f"data.{_name(col)}",
                "unknown_column",
                f"column {_name(col)!r} is not used by the model; data must have exactly "
                f"{list(wanted)}",
            )
            for col in unknown
        ),
    )
    not_arrays = [col for col in wanted if col in data and not isinstance(data[col], list)]
    errors.add(
        len(not_arrays),
        (
            FieldError(
                f"data.{col}",
                "not_an_array",
                f"data.{col} must be an array, got {_type_name(data[col])}",
            )
            for col in not_arrays
        ),
    )
    if errors.total > before:
        return None
    return {col: data[col] for col in wanted}


def _counts_ok(
    columns: dict[str, list[object]],
    index_col: str,
    expect: Expectations,
    errors: _Errors,
) -> bool:
    rows = len(columns[index_col])
    mismatched = [col for col in expect.columns if len(columns[col]) != rows]
    for col in mismatched:
        errors.append(
            FieldError(
                f"data.{col}",
                "length_mismatch",
                f"data.{col} has {len(columns[col])} values but data.{index_col} has {rows}",
            )
        )
    if mismatched:
        return False
    if rows > expect.max_rows:
        errors.append(
            FieldError(
                f"data.{index_col}",
                "too_many_rows",
                f"{rows} rows exceed the maximum of {expect.max_rows}",
            )
        )
        return False
    if rows < expect.min_rows:
        errors.append(
            FieldError(
                f"data.{index_col}",
                "too_few_rows",
                f"the model needs at least {expect.min_rows} rows of history, got {rows}",
            )
        )
        return False
    return True


def _series(
    columns: dict[str, list[object]],
    index_col: str,
    expect: Expectations,
    errors: _Errors,
) -> tuple[IntArray, FloatArray] | None:
    times = _parse_times(f"data.{index_col}", columns[index_col], errors)
    value_col = expect.columns[0]
    values = _parse_values(f"data.{value_col}", columns[value_col], errors)
    if times is None or values is None:
        return None
    return _regular(times, values, index_col, expect, errors)


def _regular(
    times: IntArray, values: FloatArray, index_col: str, expect: Expectations, errors: _Errors
) -> tuple[IntArray, FloatArray] | None:
    if (np.diff(times) > 0).all():  # in order already (the common case): no sort, no copy
        order = np.arange(len(times))
    else:
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    dup = np.flatnonzero(np.diff(times) == 0)
    if len(dup):
        first, second = int(order[dup[0]]), int(order[dup[0] + 1])
        when = format_times(times[dup[0] : dup[0] + 1], expect.step_ns)[0]
        errors.append(
            FieldError(
                f"data.{index_col}[{second}]",
                "duplicate_timestamps",
                f"{len(dup)} duplicate timestamp(s); {when} appears at rows {first} and {second}."
                " Every row needs its own time",
            )
        )
        return None
    try:
        return regularize(
            times, values, expect.frequency or expect.step_ns, max_gap_steps=expect.max_gap_steps
        )
    except IrregularSeriesError as exc:
        row = int(order[exc.position])
        errors.append(FieldError(f"data.{index_col}[{row}]", "irregular_spacing", str(exc)))
        return None


def regular_series(
    times: IntArray, values: FloatArray, index_col: str, expect: Expectations
) -> tuple[IntArray, FloatArray]:
    """Sort a parsed series, refuse repeated times and put it on the model's grid; raise the
    422 that :func:`parse_predict` raises for the same series."""
    errors = _Errors()
    series = _regular(times, values, index_col, expect, errors)
    if series is None:
        raise _invalid(errors.listed, errors.total)
    return series


def parse_predict(body: object, expect: Expectations) -> PredictRequest:
    """Validate a decoded body; raise a 422 ``validation-error`` :class:`ProblemError` listing
    every field error (or the first blocking one per field)."""
    errors = _Errors()
    if not isinstance(body, dict):
        raise _invalid(
            [
                FieldError(
                    "",
                    "not_an_object",
                    f"the body must be a JSON object, got {_type_name(body)}",
                )
            ],
            1,
        )
    known = sum(1 for key in _FIELDS if key in body)
    errors.add(
        len(body) - known,
        (
            FieldError(
                _name(key),
                "unknown_field",
                f"unknown field {_name(key)!r}; allowed fields are {list(_FIELDS)}",
            )
            for key in filterfalse(_FIELDS.__contains__, body)
        ),
    )
    length = _parse_length(body, expect, errors)
    levels = _parse_quantiles(body["quantiles"], errors) if "quantiles" in body else ()
    series_id = _parse_series_id(body, errors)
    series: tuple[IntArray, FloatArray] | None = None
    if "data" in body:
        series = _parse_data(body, expect, errors)
    elif "index_col" in body:
        errors.append(
            FieldError("index_col", "requires_data", "index_col is only allowed together with data")
        )
    if errors:
        raise _invalid(errors.listed, errors.total)
    if series is None:
        return PredictRequest(inference_length=length, quantiles=levels, series_id=series_id)
    return PredictRequest(
        inference_length=length,
        times_ns=series[0],
        values=series[1],
        quantiles=levels,
        series_id=series_id,
    )


def quantile_key(level: float) -> str:
    """How an answer names a quantile level: the shortest decimal that reads back as the
    same number, never in exponent form (``0.1``, ``0.025``, ``0.00001``)."""
    return str(np.format_float_positional(level, trim="-"))


def _parse_quantiles(raw: object, errors: _Errors) -> tuple[float, ...]:
    if not isinstance(raw, list):
        errors.append(
            FieldError(
                "quantiles",
                "not_an_array",
                f"quantiles must be an array of numbers, got {_type_name(raw)} {_short(raw)}",
            )
        )
        return ()
    if len(raw) > MAX_QUANTILES:
        errors.append(
            FieldError(
                "quantiles",
                "too_many_items",
                f"quantiles holds {len(raw)} levels; at most {MAX_QUANTILES} are allowed",
            )
        )
        return ()
    for i, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            errors.append(
                FieldError(
                    f"quantiles[{i}]",
                    "not_a_number",
                    f"quantiles[{i}] must be a number, got {_type_name(item)} {_short(item)}",
                )
            )
            return ()
        if not 0 < item < 1:
            errors.append(
                FieldError(
                    f"quantiles[{i}]",
                    "out_of_range",
                    f"quantiles[{i}] must be strictly between 0 and 1, got {_short(item)}",
                )
            )
            return ()
    levels = tuple(float(item) for item in raw)
    keys = [quantile_key(level) for level in levels]
    if len(set(keys)) != len(keys):
        second = next(i for i, key in enumerate(keys) if key in keys[:i])
        errors.append(
            FieldError(
                f"quantiles[{second}]",
                "duplicate_quantiles",
                f"quantile {keys[second]} is asked for twice",
            )
        )
        return ()
    return levels


def validation_problem(error: FieldError) -> ProblemError:
    """The 422 ``validation-error`` of one field error found outside the body's own checks
    (the window decides that a body must name a series)."""
    return _invalid([error], 1)


def _invalid(errors: list[FieldError], total: int) -> ProblemError:
    first = errors[0]
    more = f" (and {total - 1} more)" if total > 1 else ""
    label = first.field or "body"
    return ProblemError(
        422,
        "validation-error",
        "Request body failed validation",
        f"{label}: {first.detail}{more}",
        errors=errors[:_MAX_ERRORS],
    )


def check_forecast(values: FloatArray, value_col: str) -> None:
    """Refuse, with a 422 naming ``data.<value_col>``, a forecast that is not all finite.

    Every input value is finite (see ``not_finite``), yet values near the float64 limits
    (about 1.7e308), arranged against the model's coefficients, overflow inside it to
    Infinity or NaN, which JSON cannot carry. The output is checked rather than the inputs
    bounded: no input bound keeps every model's output finite, while this check does, and
    it refuses nothing the model can actually forecast.
    """
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise _invalid(
            [
                FieldError(
                    f"data.{value_col}",
                    "forecast_not_finite",
                    f"the forecast from these values overflows at step {int(bad[0]) + 1}: "
                    f"values this extreme are outside what the model can forecast",
                )
            ],
            1,
        )
