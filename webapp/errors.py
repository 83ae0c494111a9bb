"""Exceptions of the web application (one base class).

:class:`ProblemError` is raised by views and validation and rendered as an RFC 9457
``application/problem+json`` response by :mod:`webapp.problem`; nothing else reaches a client.
:class:`ConfigError` (a bad environment variable) is the contract's, re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contract.errors import ConfigError

__all__ = ["ConfigError", "FieldError", "ProblemError", "WebappError"]


class WebappError(Exception):
    """Base class of every error raised by :mod:`webapp`."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one part of a request body.

    ``field`` is a dotted path (``data.time[3]``), ``code`` a stable machine-readable
    reason (``duplicate_timestamps``), ``detail`` a sentence a person can act on.
    """

    field: str
    code: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "field": self.field,
            "pointer": _pointer(self.field),
            "code": self.code,
            "detail": self.detail,
        }


class ProblemError(WebappError):
    """An HTTP error with a problem+json body.

    ``slug`` names the problem type (rendered as ``/problems/<slug>``); ``headers`` are extra
    response headers (``Retry-After``, ``Allow``).
    """

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = tuple(errors)
        self.headers = dict(headers or {})


def _pointer(field: str) -> str:
    """``data.time[3]`` -> ``#/data/time/3`` (RFC 6901 with ``~`` and ``/`` escaped)."""
    if not field:
        return "#"
    parts: list[str] = []
    for dotted in field.split("."):
        name, _, rest = dotted.partition("[")
        parts.append(name.replace("~", "~0").replace("/", "~1"))
        for index in filter(None, rest.replace("]", "").split("[")):
            parts.append(index)
    return "#/" + "/".join(parts)
