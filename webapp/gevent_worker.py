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

With several workers on one listening socket, the kernel wakes all of them for a new
connection and the first to call ``accept()`` takes it. A busy worker is already running and
often wins, so connections pile up where the load already is (the keep-alive connections of
20 load-test users were seen split 12/4/4 and 10/6/4 over three workers), and the busiest
worker's queue sets the latency of its share of the requests. Here the workers share their
connection counts (:class:`webapp.accept_share.ConnectionTable`) and a worker holding more
connections than another waits ``WEB_ACCEPT_DEFER_MS`` before it accepts
(:class:`FairShareServer`), so that the one holding fewest takes the connection first. If
no other worker took it by then, the waiting worker does: a connection waits at most twice
that long for a worker, and when the counts are even nobody waits.
"""

from __future__ import annotations

import os
import time
from typing import Any

from gevent.server import StreamServer
from gunicorn import util
from gunicorn.workers import ggevent

from webapp.accept_share import ConnectionTable
from webapp.server_settings import settings_or_exit

__all__ = ["DEFER_TICK_S", "MAX_DRAIN_BYTES", "FairShareServer", "GeventWorker"]

MAX_DRAIN_BYTES = 16 * 1024 * 1024
# How often a waiting worker looks at the counts again (only while it waits).
DEFER_TICK_S = 0.001


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


class _NamedListener:
    """A listening socket whose ``getsockname()`` is the address it had when the worker
    started; everything else is the wrapped socket's.

    Gunicorn's handler asks the listening socket for its address when a connection's
    greenlet starts. A worker that stops closes its listening socket at once, and a
    connection it accepted in the same turn of its event loop (a wait of
    :class:`FairShareServer` ending there, or a plain accept) starts after that: asking the
    closed socket fails with EBADF and Gunicorn closes that connection unanswered. The
    address never changes, so it is read once, while the socket is open.
    """

    __slots__ = ("_name", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._name = sock.getsockname()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def getsockname(self) -> Any:
        return self._name


class FairShareServer(StreamServer):  # type: ignore[misc]
    """gevent's ``StreamServer`` that publishes how many connections it holds in ``table``
    and, while another worker holds fewer, waits up to ``defer_s`` before an ``accept()``.

    Contract: :meth:`start` joins the table and :meth:`close` leaves it. While a wait runs,
    the listening socket is not watched (a closing connection frees a pool slot, which would
    restart that); every :data:`DEFER_TICK_S` the wait looks at the counts again and ends
    early once no other worker holds fewer. At its end, if the others' counts changed
    meanwhile and one of them still holds fewer, what is pending most likely arrived later
    than what the wait was for, so it is weighed afresh with one more wait; otherwise one
    ``accept()`` is tried (another worker may have taken the connection) and watching
    resumes. So a connection waits at most two waits for this worker. Closing the server
    ends a wait. Pool limits and the accept-error back-off are gevent's.
    """

    table: ConnectionTable
    slot = 0
    defer_s = 0.0
    _open = 0
    _defer_timer: Any = None
    _deadline = 0.0
    _seen: tuple[int, ...] = ()
    _again = False

    def start(self) -> None:
        self.table.join(self.slot)
        super().start()

    def close(self) -> None:
        self.table.leave(self.slot)
        super().close()

    def do_handle(self, *args: Any) -> None:
        # gevent calls do_close exactly once per connection handed to do_handle.
        self._open += 1
        self.table.count(self.slot, self._open)
        super().do_handle(*args)

    def do_close(self, *args: Any) -> None:
        self._open -= 1
        if not self.closed:
            self.table.count(self.slot, self._open)
        super().do_close(*args)

    def _do_read(self) -> None:
        if self.table.holds_more(self.slot):
            self._defer(again=False)
        else:
            super()._do_read()

    def _defer(self, *, again: bool) -> None:
        self.stop_accepting()
        self._seen = self.table.others(self.slot)
        self._again = again
        self._deadline = time.monotonic() + self.defer_s
        tick = min(DEFER_TICK_S, self.defer_s)
        self._defer_timer = self.loop.timer(tick, tick)
        self._defer_timer.start(self._look_again)

    def _look_again(self) -> None:
        holds_more = self.table.holds_more(self.slot)
        if holds_more and time.monotonic() < self._deadline:
            return
        if holds_more and not self._again and self.table.others(self.slot) != self._seen:
            self._defer(again=True)
            return
        self.stop_accepting()  # ends the wait
        super()._do_read()
        # Unless gevent stopped accepting itself (pool full, accept-error back-off).
        if self._watcher is None and self._timer is None and not self.full():
            self._start_accepting_if_started()

    def start_accepting(self) -> None:
        if self._defer_timer is None:
            super().start_accepting()

    def stop_accepting(self) -> None:
        super().stop_accepting()
        if self._defer_timer is not None:
            self._defer_timer.close()
            self._defer_timer = None


# Made in the Gunicorn master by the first worker object, inherited by every worker.
_table: ConnectionTable | None = None


class GeventWorker(ggevent.GeventWorker):  # type: ignore[misc]
    """:class:`gunicorn.workers.ggevent.GeventWorker` with graceful connection close and
    :class:`FairShareServer`'s accept (unless ``WEB_ACCEPT_DEFER_MS`` is 0), and
    handlers that never ask a listening socket for its address (:class:`_NamedListener`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Runs in the master, before the fork: the table must exist before any worker.
        global _table  # noqa: PLW0603 (one table per master, made on first use)
        super().__init__(*args, **kwargs)
        self._defer_s = settings_or_exit(os.environ).accept_defer_ms / 1000
        self._slot: int | None = None
        self._listeners: dict[int, _NamedListener] = {}
        if self._defer_s > 0:
            if _table is None:
                _table = ConnectionTable(max(8, 2 * self.cfg.workers))
            self._slot = _table.reserve(self)

    def run(self) -> None:
        self._listeners = {id(s): _NamedListener(s) for s in self.sockets}
        # One listening socket: its server's count is the worker's (several: Gunicorn's way).
        if _table is not None and self._slot is not None and len(self.sockets) == 1:
            FairShareServer.table = _table
            FairShareServer.slot = self._slot
            FairShareServer.defer_s = self._defer_s
            # Gunicorn's run() builds its servers from this module's name; the change stays
            # in this worker process.
            ggevent.StreamServer = FairShareServer
        super().run()

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        # Gunicorn's run() passes its own listening socket objects, open when run() began.
        listener = self._listeners.get(id(listener), listener)
        super().handle(listener, _GracefulClose(client), addr)
