"""A deadline for reading a request body, so a client trickling its body cannot hold a
worker's connection slot for longer than ``REQUEST_BODY_TIMEOUT_S``.

Under Gunicorn's gevent worker (the default, see ``gunicorn.conf.py``) each read of
``wsgi.input`` runs under a :class:`gevent.Timeout` for the time left until the deadline,
which starts when the application receives the request; a body not complete by then
answers ``408`` problem+json (``request-timeout``). The time to send the request line and
headers is bounded by Gunicorn itself (``keepalive`` seconds under gevent). Under the sync
and gthread workers a blocked read cannot be interrupted this way and the wrapper stays out
of the way: those classes belong behind a buffering proxy (``docs/web-api.md``, "Slow
clients and request limits").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from webapp.errors import ProblemError

__all__ = ["BodyDeadline"]

_StartResponse = Callable[..., Any]
_WsgiApp = Callable[[dict[str, Any], _StartResponse], Iterable[bytes]]


def _gevent_active() -> bool:
    try:
        from gevent import monkey  # noqa: PLC0415 (only meaningful once a worker patched)
    except ImportError:  # pragma: no cover - gevent is a dependency
        return False
    return bool(monkey.is_module_patched("socket"))


class _DeadlineInput:
    """``wsgi.input`` whose reads fail with a 408 :class:`ProblemError` past ``deadline``."""

    def __init__(self, stream: Any, deadline: float, limit_s: float) -> None:
        self._stream = stream
        self._deadline = deadline
        self._limit_s = limit_s

    def _expired(self) -> ProblemError:
        return ProblemError(
            408,
            "request-timeout",
            "Request Timeout",
            f"the request body was not received within {self._limit_s:g} s",
        )

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        import gevent  # noqa: PLC0415 (see _gevent_active)

        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise self._expired()
        timer = gevent.Timeout(remaining)
        timer.start()
        try:
            return fn(*args)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            raise self._expired() from None
        finally:
            timer.close()

    def read(self, size: int | None = None) -> bytes:
        return bytes(self._call(self._stream.read, size))

    def readline(self, size: int | None = None) -> bytes:
        return bytes(self._call(self._stream.readline, size))

    def readlines(self, hint: int | None = None) -> list[bytes]:
        return list(self._call(self._stream.readlines, hint))

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BodyDeadline:
    """WSGI middleware installing :class:`_DeadlineInput` when the gevent worker serves."""

    def __init__(self, app: _WsgiApp, limit_s: float) -> None:
        self._app = app
        self._limit_s = limit_s
        self._active: bool | None = None

    def __call__(self, environ: dict[str, Any], start_response: _StartResponse) -> Any:
        if self._active is None:
            self._active = _gevent_active()
        if self._active and "wsgi.input" in environ:
            environ["wsgi.input"] = _DeadlineInput(
                environ["wsgi.input"], time.monotonic() + self._limit_s, self._limit_s
            )
        return self._app(environ, start_response)
