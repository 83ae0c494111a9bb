"""RFC 9457 problem+json responses for every error, replacing Werkzeug's HTML pages.

``type`` is a relative URI ``/problems/<slug>`` (documented in ``/openapi.json``);
``errors`` lists field errors (empty unless the body failed validation). Unexpected
exceptions become a bare 500 problem: the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import json
import logging

import msgspec
from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from webapp.errors import ProblemError
from webapp.schemas import FieldErrorDoc, Problem

__all__ = [
    "PROBLEM_JSON",
    "SLUGS",
    "install_error_handlers",
    "problem_body",
    "problem_response",
    "slug_for",
]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode

PROBLEM_JSON = "application/problem+json"

# The problem type of an HTTP status raised by Werkzeug or answered by Gunicorn itself.
SLUGS = {
    400: "bad-request",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    417: "expectation-failed",
    431: "header-fields-too-large",
    500: "internal-error",
}


def slug_for(status: int) -> str:
    """The problem type of an HTTP-level error with ``status`` (``http-error`` if unlisted)."""
    return SLUGS.get(status, "http-error")


def problem_body(problem: ProblemError, instance: str | None = None) -> bytes:
    """The problem+json document of ``problem`` (:class:`webapp.schemas.Problem`)."""
    doc = Problem(
        type=f"/problems/{problem.slug}",
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        instance=msgspec.UNSET if instance is None else instance,
        errors=[FieldErrorDoc(**e.as_dict()) for e in problem.errors],
    )
    try:
        return _encode(doc)
    except UnicodeEncodeError:
        # A name a client chose may hold a lone surrogate (valid in JSON text as an escape,
        # not encodable as UTF-8): written as an escape again.
        return json.dumps(msgspec.to_builtins(doc), separators=(",", ":")).encode()


def problem_response(problem: ProblemError) -> Response:
    response = Response(
        problem_body(problem, request.path), status=problem.status, mimetype=PROBLEM_JSON
    )
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    headers: dict[str, str] = {}
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    detail = {
        404: f"no resource at {request.path}; see /openapi.json",
        405: f"{request.method} is not allowed on {request.path}",
        413: f"the body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes",
    }.get(status, exc.description or exc.name)
    problem = ProblemError(status, slug_for(status), exc.name, detail, headers=headers)
    return problem_response(problem)


def _from_problem(exc: ProblemError) -> Response:
    return problem_response(exc)


def _from_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error", extra={"method": request.method, "path": request.path})
    return problem_response(
        ProblemError(500, "internal-error", "Internal Server Error", "the server failed; see logs")
    )


def install_error_handlers(app: Flask) -> None:
    """Route every error raised while handling a request through problem+json."""
    app.register_error_handler(ProblemError, _from_problem)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _from_unexpected)
