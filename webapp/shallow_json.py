"""Decoding a refused ``POST /predict`` body for validation, without building what
validation never looks at.

:func:`decode_shallow` returns what :func:`webapp.validation.decode_json` returns, except
that values validation does not look into stay encoded
(``msgspec.Raw``): unknown fields, unknown columns, nested arrays and objects. The validator
reads those only for their type and size (``_short`` opens them one level), so it reaches
the same verdict. A megabyte of ``[[],[],...]`` under an unknown key is then checked by
msgspec's skipping, not built as half a million lists.

What :func:`decode_json` refuses and msgspec's skipping would not notice is checked here, and
whenever the check cannot decide, it says so and the body goes to :func:`decode_json`:

* repeated keys: every ``:`` in the body must be accounted for by the keys decoded (one
  each) and by the ``:`` of values in which no object has two keys
  (:mod:`webapp.json_keys`); a repeated key drops a key token and leaves its ``:``
  unaccounted. Escaped colons (``\\u003a``) go the precise way, so that raw and decoded
  counts agree;
* integers of more than 4,300 digits (any run of that many digits goes the precise way);
* nesting: msgspec is called a few frames deeper than the standard decoder, so it gives up
  first (:data:`_FRAMES`) and the standard decoder gives the verdict;
* NaN, Infinity, ``1e400``, lone surrogates: msgspec refuses them, and the body goes the
  precise way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TypeVar

import msgspec
from msgspec import Raw

from webapp.json_keys import no_object_has_two_keys
from webapp.schemas import MAX_QUANTILES, PREDICT_FIELDS

__all__ = ["UNDECIDED", "decode_shallow"]

T = TypeVar("T")

_MAX_INT_DIGITS = 4300
# msgspec reaches about 5 levels deeper than json.loads from the same frame; calling it this
# many frames deeper makes it refuse first.
_FRAMES = 10
_DIGITS = bytes.maketrans(b"0123456789", b"9999999999")
_FIELDS = PREDICT_FIELDS
_SCALARS = ("inference_length", "series_id")  # top-level fields validation reads as they are


UNDECIDED = object()


class _UndecidedError(Exception):
    """The shallow decode cannot vouch for this body: decode it the precise way."""


def _deeper(frames: int, fn: Callable[[], T]) -> T:
    return fn() if frames == 0 else _deeper(frames - 1, fn)


def _decode(span: bytes | Raw, kind: type[T]) -> T:
    try:
        return _deeper(_FRAMES, lambda: msgspec.json.decode(span, type=kind))
    except (msgspec.DecodeError, RecursionError):
        raise _UndecidedError from None


def _head(value: Raw) -> bytes:
    return memoryview(value)[:1].tobytes()


def _safe_colons(value: Raw) -> int:
    """The ``:`` of a value in which no object repeats a key, else undecided."""
    span = memoryview(value).tobytes()
    colons = span.count(b":")
    if colons and b"{" in span and not no_object_has_two_keys(span):
        raise _UndecidedError
    return colons


def _scalar_or_raw(value: Raw) -> object:
    """A scalar exactly as the standard decoder reads it; containers stay encoded."""
    if _head(value) in (b"[", b"{"):
        return value
    try:
        return json.loads(memoryview(value).tobytes())
    except ValueError:  # an integer past the digit limit: the precise path words it
        raise _UndecidedError from None


def _column(value: Raw, max_rows: int) -> object:
    """A column as the validator reads it: its items decoded (strings and numbers exactly,
    containers left encoded); past ``max_rows`` items it is refused on its length alone, so
    its items stay encoded."""
    if _head(value) != b"[":
        return _scalar_or_raw(value)
    try:
        return _deeper(_FRAMES, lambda: msgspec.json.decode(value, type=list[str | int | float]))
    except msgspec.ValidationError:
        pass  # an item of another type: decode one level
    except (msgspec.DecodeError, RecursionError):
        raise _UndecidedError from None
    items = _decode(value, list[Raw])
    if len(items) > max_rows:
        return items
    return [_scalar_or_raw(item) for item in items]


def _key_colons(keys: Iterable[str]) -> int:
    text = "".join(keys)
    return text.count(":")


def _shallow(raw: bytes, columns: tuple[str, ...], max_rows: int) -> object:
    if b"\\u003" in raw or b"\\U003" in raw:
        raise _UndecidedError
    if len(raw) > _MAX_INT_DIGITS and b"9" * (_MAX_INT_DIGITS + 1) in raw.translate(_DIGITS):
        raise _UndecidedError
    top = _decode(raw, dict[str, Raw])
    data = None
    if "data" in top and _head(top["data"]) == b"{":
        data = _decode(top["data"], dict[str, Raw])
    index_col = _scalar_or_raw(top["index_col"]) if "index_col" in top else "time"
    read = set(columns) | ({index_col} if isinstance(index_col, str) else set())
    # Spans whose every ":" counts: the values validation reads. Those of all the other
    # values are counted only when the body has ":" left over (a loop over every key).
    opened = [top[name] for name in _FIELDS if name in top and not (name == "data" and data)]
    opened += [data[col] for col in read if col in data] if data else []
    counted = len(top) + _key_colons(top) + sum(map(_safe_colons, opened))
    if data is not None:
        counted += len(data) + _key_colons(data)
    if counted != raw.count(b":"):
        others = [v for k, v in top.items() if k not in _FIELDS]
        others += [v for k, v in data.items() if k not in read] if data else []
        if counted + sum(map(_safe_colons, others)) != raw.count(b":"):
            raise _UndecidedError
    return _replace(top, data, index_col, read, max_rows)


def _replace(
    top: dict[str, Raw],
    data: dict[str, Raw] | None,
    index_col: object,
    read: set[str],
    max_rows: int,
) -> dict[str, object]:
    """``top`` with the values validation reads decoded (in place: no copy of a large
    object), the others left encoded."""
    body: dict[str, object] = top  # type: ignore[assignment]  # values replaced here
    if "index_col" in top:
        body["index_col"] = index_col
    for name in _SCALARS:
        if name in top:
            body[name] = _scalar_or_raw(top[name])
    if "quantiles" in top:
        body["quantiles"] = _column(top["quantiles"], MAX_QUANTILES)
    if data is None:
        if "data" in top:
            body["data"] = _scalar_or_raw(top["data"])
        return body
    columns: dict[str, object] = data  # type: ignore[assignment]  # values replaced here
    for col in read:
        if col in data:
            columns[col] = _column(data[col], max_rows)
    body["data"] = columns
    return body


def decode_shallow(raw: bytes, columns: tuple[str, ...], max_rows: int) -> object:
    """``decode_json(raw)`` for validating against a model with value ``columns`` and a row
    limit ``max_rows``, with the parts validation does not read left encoded (module
    docstring); or :data:`UNDECIDED` when only :func:`decode_json` can tell. The caller then
    calls it from its own frame: how deep a body may nest depends on the stack."""
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return UNDECIDED
    try:
        return _shallow(raw, columns, max_rows)
    except _UndecidedError:
        return UNDECIDED
