"""The one JSON log format of the daemon, the web workers and Gunicorn (python-json-logger).

Each line is one object: ``ts`` (UTC, milliseconds, ``Z``), ``level``, ``logger``, ``pid``,
``message`` and the ``extra`` fields the caller passed; an exception goes under ``exc``.
A record whose message is a dict (Gunicorn's access lines) has its keys merged in instead
of a ``message``. Request bodies are never logged.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _Base

__all__ = ["JsonFormatter", "configure"]


class JsonFormatter(_Base):
    """python-json-logger's formatter with this project's field names."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(process)d %(message)s",
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "process": "pid",
                "exc_info": "exc",
            },
            json_default=str,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """ISO-8601 UTC with milliseconds."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Put ``ts`` first and merge a dict message's keys instead of a ``message`` string."""
        log_data["ts"] = self.formatTime(record)
        if isinstance(record.msg, dict):
            message_dict = {**record.msg, **message_dict}
            record.message = ""
        super().add_fields(log_data, record, message_dict)
        if isinstance(record.msg, dict):
            log_data.pop("message", None)


def configure(level: str, *, quiet: tuple[str, ...] = ()) -> None:
    """Send every logger's records to stderr as JSON lines at ``level``; the loggers named in
    ``quiet`` (chatty libraries) log WARNING and above only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in quiet:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
