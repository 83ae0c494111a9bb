"""RFC 9457 problem+json responses for every error, replacing Werkzeug's HTML pages.

``type`` is a relative URI ``/problems/<slug>`` (documented in ``/openapi.json``);
``errors`` lists field errors (empty unless the body failed validation). Unexpected
exceptions become a bare 500 problem: the traceback goes to the log, never to the client.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from webapp.errors import ProblemError

__all__ = ["PROBLEM_JSON", "install_error_handlers", "problem_response"]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

_SLUGS = {
    400: "bad-request",
    404: "not-found",
    405: "method-not-allowed",
    413: "payload-too-large",
    415: "unsupported-media-type",
}


def problem_response(problem: ProblemError) -> Response:
    body = {
        "type": f"/problems/{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
        "errors": [e.as_dict() for e in problem.errors],
    }
    response = Response(
        json.dumps(body, separators=(",", ":"), allow_nan=False),
        status=problem.status,
        mimetype=PROBLEM_JSON,
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
    slug = _SLUGS.get(status, "http-error")
    return problem_response(ProblemError(status, slug, exc.name, detail, headers=headers))


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
