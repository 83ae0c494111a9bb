"""Keeps one worker process on the newest generation between requests.

Each Gunicorn worker runs one :class:`Follower` (started by :func:`webapp.app.warm_up`). Every
``interval`` it asks the reader for the newest generation, derives what requests need from a
new one (summary, model, forecast) so that the first request after a publication finds them
ready, and reports the generation it now serves as ``webapp_worker_generation``. Being the
only writer of that gauge in its process, it reports generations in the order the reader
returned them, and an idle worker reports as faithfully as a busy one.
"""

from __future__ import annotations

import logging
import threading

from webapp import metrics
from webapp.worker_state import WorkerState

__all__ = ["Follower"]

log = logging.getLogger(__name__)


class Follower:
    """A daemon thread (a greenlet under the gevent worker) polling ``state``.

    Contract: :meth:`start` once per process after fork; :meth:`stop` ends the loop within one
    interval. :meth:`poll` never raises.
    """

    def __init__(self, state: WorkerState, interval_s: float) -> None:
        self._state = state
        self._interval_s = interval_s
        self._stopped = threading.Event()
        self._reported: int | None = None
        self._thread: threading.Thread | None = None

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
        while not self._stopped.wait(self._interval_s):
            self.poll()
