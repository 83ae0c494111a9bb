"""Gunicorn's gevent worker, closing connections gracefully (``WEB_WORKER_CLASS=gevent``).

Gunicorn's async workers close a finished connection at once. When the client is still
sending a body the app refused without reading it (a 413 for a chunked body over
``MAX_BODY_BYTES``), the unread bytes make the kernel answer with a reset, which can reach
the client before the response does. The sync-style graceful close (RFC 9112, section 9.6:
half-close, drain briefly, close) that Gunicorn's gthread worker uses avoids that; this
worker applies it to every connection.

Gunicorn's own graceful close stops draining after 64 KiB; a client can have more than that
in flight when a 413 is answered (its body past ``MAX_BODY_BYTES``), and closing on unread
bytes resets the connection while that client is still sending. The drain here is bounded by
time (Gunicorn's 2 s) and by :data:`MAX_DRAIN_BYTES`, which covers any body a client sends
before it reads the answer; under gevent a draining connection costs a parked greenlet only.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker

__all__ = ["MAX_DRAIN_BYTES", "GeventWorker"]

MAX_DRAIN_BYTES = 16 * 1024 * 1024


class _GracefulClose:
    """A socket whose ``close()`` is :func:`gunicorn.util.close_graceful`; everything else
    is the wrapped socket's."""

    __slots__ = ("_sock",)

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def close(self) -> None:
        util.close_graceful(self._sock, max_drain=MAX_DRAIN_BYTES)


class GeventWorker(_GunicornGeventWorker):  # type: ignore[misc]
    """:class:`gunicorn.workers.ggevent.GeventWorker` with graceful connection close."""

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        super().handle(listener, _GracefulClose(client), addr)
