"""Keeps one worker process on the newest generation between requests.

Each Gunicorn worker runs one :class:`Follower` (started by :func:`webapp.app.warm_up`). When
a file is renamed into the shm directory (a publication's last step: the generation file),
and at the latest every ``interval``, it asks the reader for the newest generation, derives
what requests need from a new one (open, summary with its checksum, catalog, model, forecast)
so that the first request after a publication finds them ready, and reports the generation it
now serves as ``webapp_worker_generation``. Being the only writer of that gauge in its
process, it reports generations in the order the reader returned them, and an idle worker
reports as faithfully as a busy one.

The renames are watched with Linux's inotify (:class:`DirectoryRenames`): the follower sleeps
on its descriptor (a greenlet under the gevent worker, parked in the event loop) and wakes
within a fraction of a millisecond of the publication, instead of up to ``interval`` later,
at no cost while nothing is published. While the watch holds, the follower also looks once
per :data:`WATCHED_POLL_S` (waking up every ``interval`` cost each idle worker about 2 % of a
core, all for nothing while the watch reports every publication); where inotify is
unavailable, or the watch ended because the directory was removed or replaced, it polls every
``interval`` until a new watch holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import struct
import threading
from pathlib import Path

from webapp import metrics
from webapp.worker_state import WorkerState

__all__ = ["WATCHED_POLL_S", "DirectoryRenames", "Follower"]

log = logging.getLogger(__name__)

# The follower's longest sleep while a watch holds: a safety net only, as every publication
# ends with a rename the watch reports.
WATCHED_POLL_S = 1.0

# <sys/inotify.h>
_IN_MOVED_TO = 0x00000080
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_IGNORED = 0x00008000
_ENDED = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.inotify_init1.argtypes = [ctypes.c_int]
        libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class DirectoryRenames:
    """Files renamed into one directory, as an inotify descriptor (Linux). Owned by one
    process: made after fork, closed by :meth:`close`."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.ended = False

    @classmethod
    def watch(cls, directory: Path) -> DirectoryRenames | None:
        """A watch on ``directory``; None where inotify is unavailable (not Linux, the
        per-user limit of watches reached) or the directory does not exist yet. The watch
        ends (:attr:`ended`) when the directory is removed, or moved away from its path."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        if _LIBC.inotify_add_watch(fd, os.fsencode(directory), _IN_MOVED_TO | _ENDED) < 0:
            os.close(fd)
            return None
        return cls(fd)

    def wait(self, timeout_s: float) -> bool:
        """Whether a file was renamed into the directory, or the watch ended, since the last
        call, waiting up to ``timeout_s`` for either; what arrived meanwhile is consumed."""
        return self.renamed(timeout_s) is not None

    def renamed(self, timeout_s: float) -> list[str] | None:
        """As :meth:`wait`, but naming the files renamed into the directory since the last
        call, in order (empty when only the watch's end arrived); None when nothing arrived
        within ``timeout_s``. Each of those renames was complete when this returned."""
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return None
        names: list[str] = []
        try:
            while chunk := os.read(self._fd, 65536):
                self.ended = _parse(chunk, names) or self.ended
        except BlockingIOError:
            pass
        return names

    def close(self) -> None:
        os.close(self._fd)


def _parse(events: bytes, names: list[str]) -> bool:
    """Append to ``names`` the files renamed in by the inotify events in ``events`` (whole
    events, as one read returns them); return whether they include the end of the watched
    directory or of the watch itself."""
    ended = False
    offset = 0
    while offset + _EVENT.size <= len(events):
        _, mask, _, name_len = _EVENT.unpack_from(events, offset)
        start = offset + _EVENT.size
        if mask & _ENDED:
            ended = True
        elif mask & _IN_MOVED_TO:
            names.append(os.fsdecode(events[start : start + name_len].rstrip(b"\0")))
        offset = start + name_len
    return ended


class Follower:
    """A daemon thread (a greenlet under the gevent worker) polling ``state`` at each rename
    into the shm directory, and at least every :data:`WATCHED_POLL_S` while that directory
    is watched, else every ``interval_s``.

    Contract: :meth:`start` once per process after fork; :meth:`stop` ends the loop at its next
    wake (a rename, or the longer of ``interval_s`` and :data:`WATCHED_POLL_S`). :meth:`poll`
    never raises. ``watching``: the renames are watched (else it only polls every interval);
    ``watches``: how many watches it has made (a new one after the directory is replaced).
    """

    def __init__(self, state: WorkerState, interval_s: float) -> None:
        self._state = state
        self._interval_s = interval_s
        self.watching = False
        self.watches = 0
        self._stopped = threading.Event()
        self._reported: int | None = None
        self._thread: threading.Thread | None = None

    @property
    def reported(self) -> int | None:
        """The generation last reported (None before the first)."""
        return self._reported

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webapp-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def poll(self) -> int | None:
        """Prepare the newest generation and report it; return its number (None if none)."""
        try:
            view = self._state.prepare_newest()
            if view is not None and view.generation != self._reported:
                metrics.set_worker_generation(view.generation)
                self._reported = view.generation
        except Exception:  # the loop must outlive any single failure; requests report them
            log.exception("worker follower poll failed")
        return self._reported

    def _run(self) -> None:
        # A watch is tried again every interval until it holds (the daemon may create the
        # directory after the worker starts, or replace it later: that ends the watch).
        renames: DirectoryRenames | None = None
        try:
            while not self._stopped.is_set():
                if renames is not None and renames.ended:
                    renames.close()
                    renames = None
                if renames is None:
                    renames = DirectoryRenames.watch(self._state.settings.shm_dir)
                    self.watching = renames is not None
                    self.watches += self.watching
                if renames is None:
                    self._stopped.wait(self._interval_s)
                else:
                    renames.wait(max(self._interval_s, WATCHED_POLL_S))
                    if renames.ended:
                        # The reader would notice another directory at its next periodic
                        # check only; make this poll's read look.
                        self._state.source.recheck()
                if not self._stopped.is_set():
                    self.poll()
        finally:
            if renames is not None:
                renames.close()
