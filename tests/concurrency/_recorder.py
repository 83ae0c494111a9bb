"""Records every generation a publisher puts in a directory: ``python -m tests.concurrency._recorder
DIR OUT``.

A separate process (so the test's client threads cannot starve it of the GIL) woken by inotify
on each rename into ``DIR``. For every new ``gen-*.arrow`` it maps the generation (an inline
file, or a manifest and every segment file it names, as ``shm.Reader`` does), reads the
publisher's metadata (``window_checksum``, ``rows``, ``offsets``, ``state``, ``model_file``) and
recomputes the checksum of the data itself (``Snapshot.data_checksum``: the table's, or the
combination of every segment's), then appends one JSON line to ``OUT``::

    {"generation": g, "rows": "...", "window_checksum": "...", "actual": "...", ...}

A generation unlinked before it could be opened (the publisher keeps two) is written as
``{"generation": g, "missed": true}``; one the reader refuses (corrupt, unsafe) as
``{"generation": g, "refused": "<why>"}``. Runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from shm import ShmError, Snapshot
from shm._generation import open_generation
from tests._wait import wait_until

_GEN = re.compile(r"\Agen-(\d{20})\.arrow\Z")
_IN_MOVED_TO = 0x80
_IN_CREATE = 0x100
_KEYS = ("rows", "window_checksum", "offsets", "state", "source", "model_file", "counters")


def _inotify(directory: Path) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1")
    if libc.inotify_add_watch(fd, str(directory).encode(), _IN_MOVED_TO | _IN_CREATE) < 0:
        raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
    return fd


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass


def _open(directory: Path, generation: int) -> Snapshot | dict[str, Any]:
    """The generation, mapped with every file it names (so that it outlives their unlinking);
    else what to record instead."""
    try:
        return open_generation(directory, generation, frozenset({os.geteuid()}))
    except FileNotFoundError:
        return {"missed": True}
    except (ShmError, OSError) as exc:
        return {"refused": str(exc)}


def _read(snapshot: Snapshot) -> dict[str, Any]:
    """Metadata and recomputed checksum of ``snapshot``."""
    meta = snapshot.metadata
    out: dict[str, Any] = {k: meta.get(k) for k in _KEYS}
    out["actual"] = snapshot.data_checksum()
    out["actual_rows"] = snapshot.num_rows
    out["published_at_ns"] = snapshot.published_at_ns
    out["segmented"] = snapshot.segmented
    return out


def main(directory: Path, out: Path) -> int:
    stop = False

    def handle(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handle)
    # Run ahead of the load when allowed (root), so a generation is opened before it is
    # pruned: real-time round-robin (it sleeps in select between renames and does well under
    # a millisecond of work per generation), else a lower nice value.
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except OSError:
        with contextlib.suppress(OSError):
            os.nice(-10)
    watch = _inotify(directory)
    seen: set[int] = set()
    newest = 0
    pending: list[tuple[int, Snapshot | dict[str, Any]]] = []

    def open_new() -> None:
        # A mapped file outlives its unlinking: map every new generation before reading any.
        for name in sorted(n for n in os.listdir(directory) if _GEN.match(n)):
            generation = int(name[4:24])
            if generation not in seen:
                seen.add(generation)
                pending.append((generation, _open(directory, generation)))

    with out.open("a", buffering=1) as sink:
        while not stop:
            open_new()
            while pending:
                generation, opened = pending.pop(0)
                for gap in range(newest + 1, generation) if newest else ():
                    if gap not in seen:
                        seen.add(gap)
                        sink.write(json.dumps({"generation": gap, "missed": True}) + "\n")
                newest = max(newest, generation)
                record = opened if isinstance(opened, dict) else _read(opened)
                del opened  # unmaps
                sink.write(json.dumps({"generation": generation, **record}) + "\n")
                # Reading takes a while at full publishing speed: look again before the next
                # read, so a generation published meanwhile is opened before it can be pruned.
                open_new()
            try:
                select.select([watch], [], [], 0.2)
            except InterruptedError:
                continue
            _drain(watch)
    os.close(watch)
    return 0


class Recorder:
    """The parent's side: start the recorder process on ``directory``, read what it wrote."""

    def __init__(self, directory: Path, out: Path) -> None:
        self.directory = directory
        self.out = out
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Recorder:
        root = Path(__file__).resolve().parents[2]
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.concurrency._recorder",
                str(self.directory),
                str(self.out),
            ],
            cwd=root,
        )
        # It creates OUT only once its watch is in place: from then on it sees every rename.
        proc = self._proc
        wait_until(
            lambda: self.out.exists() or proc.poll() is not None,
            timeout=30,
            what="the recorder watching",
        )
        assert proc.poll() is None, "the recorder exited"
        return self

    def wait_for(self, generation: int, timeout: float = 30.0) -> dict[int, dict[str, Any]]:
        """The records once every generation up to ``generation`` has one (missed included)."""

        def reached() -> dict[int, dict[str, Any]] | None:
            records = self.records()
            return records if records and max(records) >= generation else None

        return wait_until(
            reached, timeout=timeout, what=f"the recorder reaching generation {generation}"
        )

    def realtime(self) -> bool:
        """Whether the recorder runs with real-time priority (granted to root): it then opens
        each generation before the publisher can prune it."""
        assert self._proc is not None
        return os.sched_getscheduler(self._proc.pid) == os.SCHED_RR

    def records(self) -> dict[int, dict[str, Any]]:
        """``{generation: record}`` of everything written so far (missed ones included)."""
        if not self.out.exists():
            return {}
        result: dict[int, dict[str, Any]] = {}
        for line in self.out.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line being written
            result[record["generation"]] = record
        return result

    def stop(self) -> dict[int, dict[str, Any]]:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            self._proc.wait(10)
        return self.records()

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
