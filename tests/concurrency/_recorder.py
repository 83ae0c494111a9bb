"""Records every generation a publisher puts in a directory: ``python -m tests.concurrency._recorder
DIR OUT``.

A separate process (so the test's client threads cannot starve it of the GIL) woken by inotify
on each rename into ``DIR``. For every new ``gen-*.arrow`` it maps the file, reads the
publisher's metadata (``window_checksum``, ``rows``, ``offsets``, ``state``, ``model_file``) and
recomputes the checksum of the data itself, then appends one JSON line to ``OUT``::

    {"generation": g, "rows": "...", "window_checksum": "...", "actual": "...", ...}

A generation unlinked before it could be opened (the publisher keeps two) is written as
``{"generation": g, "missed": true}``. Runs until SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import mmap
import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from shm import table_checksum
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


def _open(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _read(fd: int) -> dict[str, Any]:
    """Metadata and recomputed checksum of the generation open as ``fd`` (then closed)."""
    try:
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mapped:
            buffer = pa.py_buffer(mapped)
            reader = pa.ipc.open_file(buffer)
            table = reader.read_all()
            meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
            out: dict[str, Any] = {k: meta.get(k) for k in _KEYS}
            out["actual"] = table_checksum(table)
            out["actual_rows"] = table.num_rows
            out["published_at_ns"] = int(meta.get("shm.published_at_ns", "0"))
            del reader, table, buffer
    finally:
        os.close(fd)
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
    pending: list[tuple[int, int | None]] = []

    def open_new() -> None:
        # An open file outlives its unlinking: open every new generation before reading any.
        for name in sorted(n for n in os.listdir(directory) if _GEN.match(n)):
            generation = int(name[4:24])
            if generation not in seen:
                seen.add(generation)
                pending.append((generation, _open(directory / name)))

    with out.open("a", buffering=1) as sink:
        while not stop:
            open_new()
            while pending:
                generation, gen_fd = pending.pop(0)
                for gap in range(newest + 1, generation) if newest else ():
                    if gap not in seen:
                        seen.add(gap)
                        sink.write(json.dumps({"generation": gap, "missed": True}) + "\n")
                newest = max(newest, generation)
                if gen_fd is None:
                    sink.write(json.dumps({"generation": generation, "missed": True}) + "\n")
                else:
                    sink.write(json.dumps({"generation": generation, **_read(gen_fd)}) + "\n")
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
