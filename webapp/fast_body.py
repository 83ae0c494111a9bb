"""The one-pass decode of a valid ``POST /predict`` body.

:func:`fast_predict` decodes the bytes straight into :class:`webapp.schemas.PredictBody` with
msgspec (types, unknown fields and ``inference_length >= 1`` checked while decoding), parses
the time column at once (:mod:`webapp.isotimes`) and builds the value array with no Python
step per element. It answers only when it is certain that
``parse_predict(decode_json(raw), expect)`` would accept the body with the same result, and
returns None otherwise, for the precise path to find and name the error:

* a backslash anywhere: every string is then its bytes, so a repeated key shows as a
  ``:`` in the body that the decoded body does not account for (msgspec keeps the last of
  repeated keys; :func:`decode_json` refuses them);
* a value column with an integer written beyond 1e300 (``not_finite``) cannot be told from
  a float once decoded, so any magnitude above 1e300 goes the precise way, as does ``-0``
  (an integer zero that would decode to ``-0.0``);
* NaN and Infinity literals, integers too long, nesting: msgspec refuses them all.
"""

from __future__ import annotations

from typing import cast

import msgspec
import numpy as np

from contract.series import SeriesIdError, check_series_id
from forecasting.features import FloatArray, IntArray
from webapp.isotimes import parse_uniform
from webapp.schemas import Column, PredictBody
from webapp.validation import (
    Expectations,
    PredictRequest,
    in_range,
    quantile_key,
    regular_series,
)

__all__ = ["fast_predict"]

_DECODE = msgspec.json.Decoder(PredictBody).decode
_LARGEST_INT_READ_AS_FINITE = 1e300
_FIELDS = PredictBody.__struct_fields__


def _each_key_once(raw: bytes, body: PredictBody, strings: list[str], colons_in_times: int) -> bool:
    """No object in ``raw`` repeated a key: every ``:`` of ``raw`` is accounted for by the
    decoded body (one per key, plus those inside its strings), so no key token was dropped.
    Valid only without backslashes in ``raw`` (every string is then its bytes)."""
    keys = [name for name in _FIELDS if getattr(body, name) is not msgspec.UNSET]
    if body.data is not msgspec.UNSET:
        keys.extend(body.data)
    expected = len(keys) + "".join(keys).count(":") + "".join(strings).count(":")
    return raw.count(b":") == expected + colons_in_times


def _decode(raw: bytes) -> tuple[PredictBody, str | None] | None:
    """The body and its series id (None without one); None when the body or its id is not
    valid, for the precise path to name the problem."""
    if b"\\" in raw:
        return None
    try:
        body = _DECODE(raw)
        series_id = None if body.series_id is msgspec.UNSET else check_series_id(body.series_id)
    except (msgspec.DecodeError, RecursionError, SeriesIdError):
        return None
    return body, series_id


def _length(body: PredictBody, expect: Expectations) -> int | None:
    if body.inference_length is msgspec.UNSET:
        return min(expect.default_inference_length, expect.max_inference_length)
    if body.inference_length > expect.max_inference_length:
        return None
    return body.inference_length


def fast_predict(raw: bytes, expect: Expectations) -> PredictRequest | None:
    """The validated request of a valid body, or None (see the module docstring)."""
    decoded = _decode(raw)
    if decoded is None:
        return None
    body, series_id = decoded
    length = _length(body, expect)
    given_index = None if body.index_col is msgspec.UNSET else body.index_col
    levels = _levels(body)
    if levels is None or length is None or (body.data is msgspec.UNSET and given_index is not None):
        return None
    named = [] if series_id is None else [series_id]
    if body.data is msgspec.UNSET:
        ok = _each_key_once(raw, body, named, 0)
        req = PredictRequest(inference_length=length, series_id=series_id, quantiles=levels)
        return req if ok else None
    index_col = given_index or expect.index_col
    series = _series(body.data, index_col, expect)
    if series is None:
        return None
    times, values, colons_in_times = series
    strings = named if given_index is None else [given_index, *named]
    if not _each_key_once(raw, body, strings, colons_in_times):
        return None
    times, values = regular_series(times, values, index_col, expect)
    return PredictRequest(
        inference_length=length,
        times_ns=times,
        values=values,
        series_id=series_id,
        quantiles=levels,
    )


def _levels(body: PredictBody) -> tuple[float, ...] | None:
    """The requested quantile levels (their range and count checked by the decoder), or
    None when two are the same level (the precise path names them)."""
    if body.quantiles is msgspec.UNSET:
        return ()
    levels = tuple(body.quantiles)
    if len({quantile_key(level) for level in levels}) != len(levels):
        return None
    return levels


def _series(
    data: dict[str, Column], index_col: str, expect: Expectations
) -> tuple[IntArray, FloatArray, int] | None:
    """The parsed times and values of valid columns, and the number of ``:`` in the times."""
    wanted = (index_col, *expect.columns)
    if len(set(wanted)) != len(wanted) or data.keys() != set(wanted):
        return None
    texts = data[index_col]
    rows = len(texts)
    if not expect.min_rows <= rows <= expect.max_rows:
        return None
    if any(len(data[col]) != rows for col in expect.columns):
        return None
    values = np.array(data[expect.columns[0]])
    if values.dtype != np.float64 or not _finite_and_plain(values):
        return None
    parsed = parse_uniform(list(texts))
    if parsed is None or not in_range(parsed.ns):
        return None
    return parsed.ns, values, "".join(cast("list[str]", texts)).count(":")


def _finite_and_plain(values: FloatArray) -> bool:
    """Finite, none beyond 1e300 in magnitude, no negative zero (see the module docstring)."""
    if not np.abs(values).max() <= _LARGEST_INT_READ_AS_FINITE:  # NaN compares False too
        return False
    return not np.signbit(values[values == 0]).any()
