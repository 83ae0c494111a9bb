"""When each generation became visible in a shm directory, seen from a process of its own.

:class:`ShmWatch` runs a reader in a separate process (spawned, so it shares no interpreter
lock with the benchmark's probe threads) that waits for renames into the directory the way a
web worker's follower does (:class:`webapp.follower.DirectoryRenames`, inotify; every 1 ms
where inotify is unavailable) and, at each new generation, records the instant its reader
returned it (CLOCK_MONOTONIC, shared by every process of the machine) and the newest event
time in it. The instant is never before the generation's rename (the reader had it in hand),
so it is an upper bound of when any worker's next request could serve it.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from shm import Reader, ShmError
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
    ready.set()
    try:
        while True:
            stopping = stop.is_set()  # then one last look: nothing published before is lost
            if not stopping:
                if renames is None or renames.ended:
                    time.sleep(_POLL_S)
                else:
                    renames.wait(_WAIT_S)
            newest = _newest(reader)
            if newest is not None and newest != current:
                seen.append((time.monotonic(), newest[1]))
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
