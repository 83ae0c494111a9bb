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
at no cost while nothing is published. Where inotify is unavailable it polls every
``interval`` as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import select
import threading
from pathlib import Path

from webapp import metrics
from webapp.worker_state import WorkerState

__all__ = ["DirectoryRenames", "Follower"]

log = logging.getLogger(__name__)

# <sys/inotify.h>
_IN_MOVED_TO = 0x00000080
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

    @classmethod
    def watch(cls, directory: Path) -> DirectoryRenames | None:
        """A watch on ``directory``; None where inotify is unavailable (not Linux, the
        per-user limit of watches reached) or the directory does not exist yet."""
        if _LIBC is None:
            return None
        fd = _LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return None
        if _LIBC.inotify_add_watch(fd, os.fsencode(directory), _IN_MOVED_TO) < 0:
            os.close(fd)
            return None
        return cls(fd)

    def wait(self, timeout_s: float) -> bool:
        """Whether a file was renamed into the directory since the last call, waiting up to
        ``timeout_s`` for one; what arrived meanwhile is consumed."""
        ready, _, _ = select.select([self._fd], [], [], timeout_s)
        if not ready:
            return False
        try:
            while os.read(self._fd, 65536):
                pass
        except BlockingIOError:
            pass
        return True

    def close(self) -> None:
        os.close(self._fd)


class Follower:
    """A daemon thread (a greenlet under the gevent worker) polling ``state`` at each rename
    into the shm directory and at least every ``interval_s``.

    Contract: :meth:`start` once per process after fork; :meth:`stop` ends the loop within one
    interval. :meth:`poll` never raises. ``watching``: the renames are watched (else it only
    polls every interval).
    """

    def __init__(self, state: WorkerState, interval_s: float) -> None:
        self._state = state
        self._interval_s = interval_s
        self.watching = False
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
        # directory after the worker starts). A directory replaced later leaves a watch that
        # sees nothing: the interval still bounds how late a generation is noticed.
        renames: DirectoryRenames | None = None
        try:
            while not self._stopped.is_set():
                if renames is None:
                    renames = DirectoryRenames.watch(self._state.settings.shm_dir)
                    self.watching = renames is not None
                if renames is None:
                    self._stopped.wait(self._interval_s)
                else:
                    renames.wait(self._interval_s)
                if not self._stopped.is_set():
                    self.poll()
        finally:
            if renames is not None:
                renames.close()
