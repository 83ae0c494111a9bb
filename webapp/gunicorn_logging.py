"""Gunicorn's logger writing the project's JSON lines (:class:`contract.logs.JsonFormatter`).

Access lines are dict messages (the formatter merges their keys): method, path (no query
string), status, bytes, duration and the ``X-Cache-Generation`` of the response; never a body.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from contract.logs import JsonFormatter
from webapp.gunicorn_errors import client_status

__all__ = ["JsonLogger"]


class JsonLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger with JSON lines for its error and access logs."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log one access line; never raise.

        Workers call this for the app's responses and, in ``handle_error``, for requests
        Gunicorn refuses itself, just before writing the error reply: an exception here
        would leave that client with no reply at all.
        """
        if not self.access_log_enabled:
            return
        try:
            line = _access_line(resp, req, environ, request_time)
        except Exception:  # noqa: BLE001 (a log line must never cost a client its reply)
            self.error_log.exception("access log line failed")
            return
        self.access_log.info(line)


def _status_code(resp: Any) -> int | None:
    """The response's status code.

    The app's responses carry ``status_code``; the response object Gunicorn builds for its
    own error replies only has the ``status`` string ("400 Bad Request").
    """
    code = getattr(resp, "status_code", None)
    if isinstance(code, int):
        return code
    head = str(getattr(resp, "status", None) or "").split(" ", 1)[0]
    return client_status(int(head)) if head.isdigit() else None


def _access_line(resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
    generation = None
    for name, value in getattr(resp, "headers", None) or ():
        if name.lower() == "x-cache-generation" and str(value).isdigit():
            generation = int(value)
    return {
        "event": "access",
        "remote": environ.get("REMOTE_ADDR"),
        "method": environ.get("REQUEST_METHOD"),
        # Gunicorn's error replies get an environ without PATH_INFO.
        "path": environ.get("PATH_INFO") or getattr(req, "path", None),
        "status": _status_code(resp),
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "generation": generation,
    }
