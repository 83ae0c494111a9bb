"""When each generation became visible in a shm directory, seen from a process of its own.

:class:`ShmWatch` runs a reader in a separate process (spawned, so it shares no interpreter
lock with the benchmark's probe threads) that waits for renames into the directory the way a
web worker's follower does (:class:`webapp.follower.DirectoryRenames`, inotify; every 1 ms
where inotify is unavailable) and, at each new generation, records an instant
(CLOCK_MONOTONIC, shared by every process of the machine) and the newest event time in it.

The instant is never before the generation's rename, so it is an upper bound of when any
worker's next request could serve it: when the watch names that generation's file among the
renames it reported, the moment it woke with them (the rename was complete then); otherwise
the moment its reader returned the generation. The watch's own read (open, map, check: about
a millisecond) is thus not part of the instant: what "visible" means here is that a request
sent after it is answered from the generation, however long that answer takes, as a
baseline's request sent after its swap is answered from the new frame.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from bench._proc import freeze_heap
from shm import Reader, ShmError
from shm._layout import generation_name
from webapp.follower import DirectoryRenames

__all__ = ["ShmWatch"]

_CTX = multiprocessing.get_context("spawn")
_POLL_S = 0.001
# A watch that reports nothing for this long is looked at again (a safety net).
_WAIT_S = 0.1


def _newest(reader: Reader) -> tuple[int, int] | None:
    """(generation, newest event ns of its last row) of the reader's current generation;
    None without one, or when the directory cannot be read this time (the next wake-up
    tries again)."""
    try:
        snapshot = reader.current()
    except (ShmError, OSError):
        return None
    if snapshot is None or snapshot.table.num_rows == 0:
        return None
    times = snapshot.table.column("time")
    return snapshot.generation, int(times[len(times) - 1].value)


def _watch(directory: str, stop: Event, ready: Event, sink: Connection) -> None:
    shm_dir = Path(directory)
    reader = Reader(shm_dir)
    renames = DirectoryRenames.watch(shm_dir)
    seen: list[tuple[float, int]] = []
    current = _newest(reader)
    freeze_heap()
    ready.set()
    try:
        while True:
            stopping = stop.is_set()  # then one last look: nothing published before is lost
            renamed: list[str] = []
            if not stopping:
                if renames is None or renames.ended:
                    time.sleep(_POLL_S)
                else:
                    renamed = renames.renamed(_WAIT_S) or []
            woke = time.monotonic()
            newest = _newest(reader)
            if newest is not None and newest != current:
                # Its rename was among those reported before ``woke``: it was in place then.
                # Else it came later, and the reader's return is the first instant known.
                at = woke if generation_name(newest[0]) in renamed else time.monotonic()
                seen.append((at, newest[1]))
                current = newest
            if stopping:
                break
    finally:
        if renames is not None:
            renames.close()
        sink.send(seen)
        sink.close()


class ShmWatch:
    """The watching process over one ``with`` block; :attr:`seen` holds, after it, one
    ``(monotonic s, newest event ns)`` per generation that appeared meanwhile."""

    def __init__(self, shm_dir: Path) -> None:
        self._shm_dir = shm_dir
        self._stop = _CTX.Event()
        self._ready = _CTX.Event()
        self._receive, self._send = _CTX.Pipe(duplex=False)
        self._proc = _CTX.Process(
            target=_watch,
            args=(str(shm_dir), self._stop, self._ready, self._send),
            daemon=True,
        )
        self.seen: list[tuple[float, int]] = []

    def __enter__(self) -> ShmWatch:
        self._proc.start()
        # The child holds the sending end now: with this copy closed, its death reads as EOF.
        self._send.close()
        deadline = time.monotonic() + 60
        while not self._ready.wait(0.1):
            if not self._proc.is_alive() or time.monotonic() > deadline:
                self._proc.kill()
                raise RuntimeError(f"the shm watch of {self._shm_dir} did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            if self._receive.poll(30):
                self.seen = list(self._receive.recv())
        except EOFError:
            pass  # the watch died: nothing recorded, which the results show as missing
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
