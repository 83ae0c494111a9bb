"""The query string of ``GET /series``: ``limit`` and ``after``, checked (pure logic).

:func:`parse_series_query` reads the raw query bytes itself rather than Werkzeug's parsed
arguments, which replace bytes that are not UTF-8 with U+FFFD and keep the last of repeated
parameters: here a value that is not UTF-8 is refused with its parameter named, and so is a
repeated or unknown parameter. Every refusal is a 422 ``validation-error`` whose
``errors[].field`` is the parameter. The request line is bounded by Gunicorn (4 KiB), so is
the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from contract.series import SeriesIdError, check_series_id
from webapp.errors import FieldError, ProblemError
from webapp.schemas import SERIES_PAGE_DEFAULT, SERIES_PAGE_MAX

__all__ = ["SERIES_PARAMETERS", "SeriesQuery", "parse_series_query"]

SERIES_PARAMETERS = ("limit", "after")
_DIGITS = re.compile(r"[0-9]{1,9}")
_SHOWN = 40


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """A valid query: at most ``limit`` series after the id ``after`` (None: from the first)."""

    limit: int = SERIES_PAGE_DEFAULT
    after: str | None = None


def _pairs(query: bytes) -> list[tuple[str, str]]:
    """``name=value`` pairs, percent- and ``+``-decoded; bytes that are not UTF-8 are kept
    as lone surrogates (``surrogateescape``), which no valid value contains."""
    out = []
    for part in query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        out.append((_text(name), _text(value)))
    return out


def _text(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "surrogateescape")


def _shown(text: str) -> str:
    cut = text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
    return ascii(cut)


def _limit(text: str) -> tuple[int | None, FieldError | None]:
    if not _DIGITS.fullmatch(text):
        detail = f"limit must be an integer from 1 to {SERIES_PAGE_MAX}, got {_shown(text)}"
        return None, FieldError("limit", "not_an_integer", detail)
    value = int(text)
    if not 1 <= value <= SERIES_PAGE_MAX:
        detail = f"limit must be between 1 and {SERIES_PAGE_MAX}, got {value}"
        return None, FieldError("limit", "out_of_range", detail)
    return value, None


def _after(text: str) -> tuple[str | None, FieldError | None]:
    try:
        return check_series_id(text), None
    except SeriesIdError as exc:
        return None, FieldError("after", "invalid_series_id", exc.detail)


def parse_series_query(query: bytes) -> SeriesQuery:
    """The query of ``GET /series`` from the raw query string; raise the 422 ProblemError
    naming each parameter that is unknown, repeated or invalid."""
    errors: list[FieldError] = []
    seen: dict[str, str] = {}
    for name, value in _pairs(query):
        if name not in SERIES_PARAMETERS:
            detail = (
                f"unknown query parameter {_shown(name)}; allowed are {list(SERIES_PARAMETERS)}"
            )
            field = ascii(name)[1:-1][:_SHOWN] or "''"  # an empty name too is named
            errors.append(FieldError(field, "unknown_field", detail))
        elif name in seen:
            detail = f"query parameter {name!r} is given more than once"
            errors.append(FieldError(name, "repeated_parameter", detail))
        else:
            seen[name] = value
    limit, after = SERIES_PAGE_DEFAULT, None
    if "limit" in seen:
        parsed, error = _limit(seen["limit"])
        limit = parsed or limit
        errors += [error] if error else []
    if "after" in seen:
        after, error = _after(seen["after"])
        errors += [error] if error else []
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ProblemError(
            422,
            "validation-error",
            "Invalid query",
            f"{first.field}: {first.detail}{more}",
            errors=errors[:20],
        )
    return SeriesQuery(limit, after)
