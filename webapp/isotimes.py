"""Vectorised parsing of a column of ISO-8601 times, exact where it answers.

:func:`parse_uniform` turns a list of strings that all share one common shape into int64
nanoseconds since the epoch (UTC) with Arrow's parser, without a Python step per element.
It answers only where ``datetime.fromisoformat`` would give the same instant for every
element; otherwise it returns None and the caller parses element by element (which is also
what names a failing element). The shapes it takes, checked byte by byte on the column's
fixed-width matrix before Arrow parses it::

    YYYY-MM-DD(T| )HH:MM:SS[.f{1..6}][Z|(+|-)HH:MM]

with every field in range (month, day of that month, hour < 24, minute and second < 60,
offset < 24 h) and a year from 1699 to 2200 (inside Arrow's nanosecond range). Seven or more
fraction digits are left to the caller: ``fromisoformat`` drops them, Arrow keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from forecasting.features import IntArray

__all__ = ["ParsedTimes", "parse_uniform"]

_DATE_TIME = 19  # YYYY-MM-DDTHH:MM:SS
_DIGITS_AT = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18)
_LITERALS = ((4, b"-"), (7, b"-"), (13, b":"), (16, b":"))
_DAYS = np.array([0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_MIN_YEAR, _MAX_YEAR = 1699, 2200
_UTC_NS = pa.timestamp("ns", tz="UTC")
_NAIVE_NS = pa.timestamp("ns")

_Bytes = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class ParsedTimes:
    """Instants in UTC nanoseconds and whether the texts carried an offset (all or none)."""

    ns: IntArray
    aware: bool


def _number(matrix: _Bytes, start: int, width: int) -> npt.NDArray[np.int64]:
    out = np.zeros(matrix.shape[0], dtype=np.int64)
    for col in range(start, start + width):
        out = out * 10 + (matrix[:, col].astype(np.int64) - 48)
    return out


def _all_digits(matrix: _Bytes, columns: range | tuple[int, ...]) -> bool:
    block = matrix[:, list(columns)]
    return bool(np.all((block >= 48) & (block <= 57)))


def _all_equal(matrix: _Bytes, col: int, allowed: bytes) -> bool:
    column = matrix[:, col]
    ok = column == allowed[0]
    for extra in allowed[1:]:
        ok |= column == extra
    return bool(np.all(ok))


def _suffix_ok(matrix: _Bytes, at: int, width: int) -> bool | None:
    """True for ``Z`` or a ``±HH:MM`` offset in range, False for none, None otherwise."""
    if width == 0:
        return False
    if width == 1:
        return True if _all_equal(matrix, at, b"Z") else None
    if width != 6 or not _all_equal(matrix, at, b"+-") or not _all_equal(matrix, at + 3, b":"):
        return None
    if not _all_digits(matrix, (at + 1, at + 2, at + 4, at + 5)):
        return None
    if np.any(_number(matrix, at + 1, 2) > 23) or np.any(_number(matrix, at + 4, 2) > 59):
        return None
    return True


def _fields_ok(matrix: _Bytes) -> bool:
    if not _all_digits(matrix, _DIGITS_AT) or not _all_equal(matrix, 10, b"T "):
        return False
    if not all(_all_equal(matrix, col, char) for col, char in _LITERALS):
        return False
    year, month, day = _number(matrix, 0, 4), _number(matrix, 5, 2), _number(matrix, 8, 2)
    if np.any(year < _MIN_YEAR) or np.any(year > _MAX_YEAR):
        return False
    if np.any(month < 1) or np.any(month > 12) or np.any(day < 1):
        return False
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    last = _DAYS[month] - ((month == 2) & ~leap)
    if np.any(day > last):
        return False
    return not (
        np.any(_number(matrix, 11, 2) > 23)
        or np.any(_number(matrix, 14, 2) > 59)
        or np.any(_number(matrix, 17, 2) > 59)
    )


def _shape(matrix: _Bytes) -> bool | None:
    """Whether the (uniform) texts carry an offset, or None when the shape is not taken."""
    width = matrix.shape[1]
    if width < _DATE_TIME or not _fields_ok(matrix):
        return None
    at = _DATE_TIME
    if width > at and matrix[0, at] == ord("."):
        digits = 0
        while at + 1 + digits < width and 48 <= matrix[0, at + 1 + digits] <= 57:
            digits += 1
        if not 1 <= digits <= 6 or not _all_equal(matrix, at, b"."):
            return None
        if not _all_digits(matrix, range(at + 1, at + 1 + digits)):
            return None
        at += 1 + digits
    return _suffix_ok(matrix, at, width - at)


def _matrix(column: pa.StringArray) -> _Bytes | None:
    """The strings as rows of a byte matrix, or None when their lengths differ."""
    offsets_buf, data_buf = column.buffers()[1:3]
    if offsets_buf is None or data_buf is None:
        return None
    rows = len(column)
    offsets = np.frombuffer(memoryview(offsets_buf), dtype=np.int32, count=rows + 1)
    width = int(offsets[1] - offsets[0])
    if int(offsets[-1] - offsets[0]) != width * rows or width > 64:
        return None  # lengths differ (or a character is not ASCII)
    data = np.frombuffer(memoryview(data_buf), dtype=np.uint8, count=int(offsets[-1]))
    return data[int(offsets[0]) :].reshape(rows, width)


def _strings(texts: list[object]) -> pa.StringArray | None:
    try:
        column = pa.array(texts, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None  # an item is not a string
    return None if column.null_count else column


def parse_uniform(texts: list[object]) -> ParsedTimes | None:
    """The instants of ``texts`` when every one is a string of the same accepted shape
    (module docstring), else None. Never raises, whatever the items are."""
    column = _strings(texts) if texts else None
    matrix = None if column is None else _matrix(column)
    aware = None if matrix is None else _shape(matrix)
    if column is None or aware is None:
        return None
    try:
        stamps = column.cast(_UTC_NS if aware else _NAIVE_NS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if stamps.null_count:
        return None
    ns = np.asarray(stamps.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return ParsedTimes(ns=ns, aware=aware)
