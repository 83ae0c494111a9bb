"""Vectorised parsing of a column of ISO-8601 times, exact where it answers.

:func:`parse_uniform` turns a list of strings that all share one common shape into int64
nanoseconds since the epoch (UTC) with a few array operations over their bytes (numpy's
calendar for the days), without a Python step per element. It answers only where
``datetime.fromisoformat`` would give the same instant for every element; otherwise it
returns None and the caller parses element by element (which is also what names a failing
element). The shapes it takes, checked byte by byte on the column's fixed-width matrix::

    YYYY-MM-DD(T| )HH:MM:SS[.f{1..6}][Z|(+|-)HH:MM]

with every field in range (month, day of that month, hour < 24, minute and second < 60,
offset < 24 h) and a year from 1699 to 2200. Seven or more fraction digits are left to the
caller (``fromisoformat`` drops them), as are lower-case letters and other separators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from forecasting.features import IntArray

__all__ = ["ParsedTimes", "parse_uniform"]

_DATE_TIME = "DDDD-DD-DDTDD:DD:DD"  # D: a digit; T: "T" or " "
# The fields read from each row; the last three are sums of the others, read in the same
# product: months since year 0, seconds since midnight, offset in seconds.
_FIELDS = (
    *("year", "month", "day", "hour", "minute", "second", "fraction", "oh", "om"),
    *("months", "seconds", "offset"),
)
_LOW = np.array([1699, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
_SPAN = np.array([501, 11, 30, 23, 59, 59, 999_999, 23, 59, 1 << 40, 1 << 40, 1 << 40]).astype(
    np.uint64
)  # high - low (the sums need no bound of their own)
_ALLOWED = {"D": b"0123456789", "T": b"T ", "S": b"+-"}
_NS = 1_000_000_000
_MAX_SHAPES = 4

_Bytes = npt.NDArray[np.uint8]
_Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class ParsedTimes:
    """Instants in UTC nanoseconds and whether the texts carried an offset (all or none)."""

    ns: IntArray
    aware: bool


@dataclass(frozen=True, slots=True)
class _Template:
    """One accepted shape: the byte range allowed at each position (the two-byte choices,
    separator and sign, are checked exactly on their own) and where each field is."""

    low: _Bytes
    span: _Bytes  # high - low
    choices: tuple[tuple[int, bytes], ...]
    weights: npt.NDArray[np.float64]  # (width, len(_FIELDS)): digit value -> field value
    suffix: str  # "", "Z" or "S" (a signed offset)
    sign_at: int


def _pattern(first: str) -> str | None:
    """The template of ``first`` (``D`` digit, ``T`` separator, ``S`` sign, else itself)."""
    rest = first[len(_DATE_TIME) :]
    fraction = ""
    if rest.startswith("."):
        digits = len(rest) - len(rest[1:].lstrip("0123456789")) - 1
        if not 1 <= digits <= 6:
            return None
        fraction, rest = "." + "D" * digits, rest[1 + digits :]
    if rest not in ("", "Z") and (len(rest) != 6 or rest[0] not in "+-"):
        return None
    suffix = rest if rest in ("", "Z") else "SDD:DD"
    return _DATE_TIME + fraction + suffix


@lru_cache(maxsize=64)
def _template(pattern: str) -> _Template:
    width = len(pattern)
    sets = [_ALLOWED.get(char, char.encode()) for char in pattern]
    low = np.array([min(b) for b in sets], dtype=np.uint8)
    high = np.array([max(b) for b in sets], dtype=np.uint8)
    choices = tuple((at, b) for at, b in enumerate(sets) if 1 < len(b) < 10)
    weights = np.zeros((width, len(_FIELDS)))
    fraction = pattern.count("D") - 14 - (4 if "S" in pattern else 0)
    sign_at = pattern.find("S")
    places = [(0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2), (20, fraction)]
    if sign_at >= 0:
        places += [(sign_at + 1, 2), (sign_at + 4, 2)]
    for field, (start, length) in enumerate(places):
        for i in range(length):
            weights[start + i, field] = 10 ** (length - 1 - i)
    weights[:, 9] = weights[:, 0] * 12 + weights[:, 1]
    weights[:, 10] = weights[:, 3] * 3600 + weights[:, 4] * 60 + weights[:, 5]
    weights[:, 11] = weights[:, 7] * 3600 + weights[:, 8] * 60
    if fraction:
        weights[:, 6] *= 10 ** (6 - fraction)  # in microseconds
    suffix = "S" if sign_at >= 0 else pattern[-1:].replace("D", "")
    return _Template(low, high - low, choices, weights, suffix, sign_at)


def _utc_ns(matrix: _Bytes, shape: _Template) -> _Ints | None:
    # Below ``low`` wraps around to a large value: one comparison checks both bounds.
    if ((matrix - shape.low) > shape.span).any():
        return None
    for at, allowed in shape.choices:
        column = matrix[:, at]
        if (
            not (column == allowed[0]).all()
            and not ((column == allowed[0]) | (column == allowed[1])).all()
        ):
            return None
    fields = ((matrix - np.uint8(48)).astype(np.float64) @ shape.weights).astype(np.int64)
    if ((fields - _LOW).view(np.uint64) > _SPAN).any():
        return None
    months = (fields[:, 9] - (1970 * 12 + 1)).astype("datetime64[M]")
    first = months.astype("datetime64[D]").astype(np.int64)
    if (fields[:, 2] > (months + 1).astype("datetime64[D]").astype(np.int64) - first).any():
        return None  # past the end of its month
    seconds = (first + (fields[:, 2] - 1)) * 86_400 + fields[:, 10]
    if shape.suffix == "S":  # "+" is 43 and "-" is 45: 44 - sign is 1 or -1
        seconds -= (44 - matrix[:, shape.sign_at].astype(np.int64)) * fields[:, 11]
    ns: _Ints = seconds * _NS + fields[:, 6] * 1000
    return ns


def _one_shape(texts: Sequence[object], width: int) -> ParsedTimes | None:
    """The instants of strings that all have ``width`` characters, or None."""
    first = texts[0]
    pattern = _pattern(first) if isinstance(first, str) and width >= len(_DATE_TIME) else None
    if pattern is None or len(pattern) != width:
        return None
    try:
        data = "".join(texts).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return None  # an item is not a string, or not ASCII
    shape = _template(pattern)
    ns = _utc_ns(np.frombuffer(data, dtype=np.uint8).reshape(len(texts), width), shape)
    return None if ns is None else ParsedTimes(ns=ns, aware=shape.suffix != "")


def parse_uniform(texts: list[object]) -> ParsedTimes | None:
    """The instants of ``texts`` when every one is a string of an accepted shape (module
    docstring), else None. The strings of one length must share one shape; up to
    :data:`_MAX_SHAPES` lengths may mix (a writer that leaves out a zero fraction), all with
    an offset or all without. Never raises, whatever the items are."""
    try:
        widths = set(map(len, texts))  # type: ignore[arg-type]
    except TypeError:
        return None  # an item without a length is no string
    if len(widths) == 1:
        return _one_shape(texts, widths.pop())
    if not 1 < len(widths) <= _MAX_SHAPES:
        return None
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))  # type: ignore[arg-type]
    ns = np.empty(len(texts), dtype=np.int64)
    aware = set()
    for width in widths:
        rows = np.flatnonzero(lengths == width)
        group = [texts[int(rows[0])]] if len(rows) == 1 else itemgetter(*rows.tolist())(texts)
        parsed = _one_shape(group, width)
        if parsed is None:
            return None
        ns[rows] = parsed.ns
        aware.add(parsed.aware)
    return ParsedTimes(ns=ns, aware=aware.pop()) if len(aware) == 1 else None
