"""Record decoding: raw Kafka record bytes -> :class:`Event`, or a :class:`DecodeError`.

A record is one JSON object ``{"time": "<ISO-8601 with offset or Z>", "<column>": <number>}``
carrying every configured column and nothing else. Timestamps keep microsecond resolution.
Each way a record can be wrong has one fixed reason label (:data:`REASONS`), which becomes
the ``reason`` header of the dead letter and the key of the daemon's counter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cache_daemon.errors import DecodeError

__all__ = ["MAX_ABS_VALUE", "MAX_RECORD_BYTES", "REASONS", "Decoder", "Event"]

MAX_RECORD_BYTES = 64 * 1024
MAX_ABS_VALUE = 1e12
REASONS = (
    "empty",
    "too_large",
    "bad_json",
    "not_object",
    "missing_time",
    "bad_time",
    "missing_column",
    "unknown_column",
    "wrong_type",
    "non_finite",
    "out_of_range",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# RFC 8259: JSON exchanged between systems is UTF-8; decoding it first skips json.loads'
# encoding detection.
_JSON = json.JSONDecoder()
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Event:
    """One valid observation: ``values`` is aligned with the decoder's columns."""

    time_ns: int
    values: tuple[float, ...]


class Decoder:
    """Validates records against a fixed list of value columns. Stateless and thread-safe."""

    def __init__(self, columns: Sequence[str], *, max_abs_value: float = MAX_ABS_VALUE) -> None:
        self.columns = tuple(columns)
        self._allowed = frozenset(("time", *self.columns))
        self._max_abs = max_abs_value

    def decode(self, raw: bytes | None) -> Event:
        """Decode one record value; raises :class:`DecodeError` with a reason from REASONS."""
        if not raw:
            raise DecodeError("empty", "the record has no value")
        if len(raw) > MAX_RECORD_BYTES:
            raise DecodeError("too_large", f"{len(raw)} bytes > {MAX_RECORD_BYTES}")
        try:
            obj = _JSON.decode(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise DecodeError("bad_json", f"not valid UTF-8 JSON: {exc}") from None
        if type(obj) is not dict:
            raise DecodeError("not_object", f"expected a JSON object, got {type(obj).__name__}")
        if "time" not in obj:
            raise DecodeError("missing_time", "the object has no 'time' field")
        time_ns = parse_time(obj["time"])
        if len(obj) != len(self._allowed) or not self._allowed.issuperset(obj):
            unknown = sorted(k for k in obj if k not in self._allowed)
            if unknown:
                shown = ", ".join(repr(k[:40]) for k in unknown[:5])
                raise DecodeError("unknown_column", f"unknown field(s) {shown}")
            missing = [c for c in self.columns if c not in obj]
            raise DecodeError("missing_column", f"missing field(s) {', '.join(missing)}")
        return Event(time_ns, self._values(obj))

    def _values(self, obj: dict[str, object]) -> tuple[float, ...]:
        values: list[float] = []
        for column in self.columns:
            value = obj[column]
            if isinstance(value, float):
                number = value
            elif isinstance(value, int) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:
                    raise DecodeError(
                        "out_of_range", f"{column!r} is too large for a float"
                    ) from None
            else:
                kind = type(value).__name__
                raise DecodeError("wrong_type", f"{column!r} is {kind}, not a number")
            if not -self._max_abs <= number <= self._max_abs:
                if math.isfinite(number):
                    raise DecodeError(
                        "out_of_range", f"{column!r} = {number:g} exceeds {self._max_abs:g}"
                    )
                raise DecodeError("non_finite", f"{column!r} is {number}")
            values.append(number)
        return tuple(values)


def parse_time(value: object) -> int:
    """ISO-8601 string with a UTC offset -> nanoseconds since the epoch (UTC)."""
    if not isinstance(value, str):
        raise DecodeError("bad_time", f"'time' is {type(value).__name__}, not an ISO-8601 string")
    if len(value) > 64:
        raise DecodeError("bad_time", "'time' is longer than 64 characters")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise DecodeError("bad_time", f"'time' {value!r} is not ISO-8601") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise DecodeError("bad_time", f"'time' {value!r} has no UTC offset (add Z or +hh:mm)")
    try:
        ns = (moment - _EPOCH) // _MICROSECOND * 1000
    except OverflowError:
        raise DecodeError("bad_time", f"'time' {value!r} is out of range") from None
    if not -_INT64_MAX <= ns <= _INT64_MAX:
        raise DecodeError("bad_time", f"'time' {value!r} is out of the nanosecond range")
    return ns
