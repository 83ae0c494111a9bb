"""problem+json for the requests Gunicorn refuses before the app runs, so that no answer of
this server is HTML (a bad request line, too many headers, conflicting framing).

Gunicorn's workers answer those through ``gunicorn.util.write_error``; :func:`install`
replaces it with :func:`write_problem` (``gunicorn.conf.py`` calls it in the master, and the
forked workers inherit it).
"""

from __future__ import annotations

from typing import Any

import gunicorn.util

from webapp.errors import ProblemError
from webapp.problem import PROBLEM_JSON, problem_body, slug_for

__all__ = ["client_status", "install", "write_problem"]


def client_status(status_int: int) -> int:
    """The status this server sends for one Gunicorn chose.

    Gunicorn answers 501 to a transfer coding it does not implement (RFC 9112, section 6.1,
    says SHOULD). Here every coding but ``chunked`` is a client's mistake like any other bad
    framing, and 5xx stays reserved for the server's own faults (the 5xx alert counts them),
    so it is a 400.
    """
    return 400 if status_int == 501 else status_int


def write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Gunicorn's ``write_error`` with a problem+json body; the connection is closed."""
    if client_status(status_int) != status_int:
        status_int, reason = client_status(status_int), "Bad Request"
    detail = mesg[:200] or "the server failed; see logs"
    body = problem_body(ProblemError(status_int, slug_for(status_int), reason, detail))
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make Gunicorn answer the requests it refuses with :func:`write_problem`."""
    gunicorn.util.write_error = write_problem
