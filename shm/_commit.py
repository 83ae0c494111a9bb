"""Writing one generation's files, and the switch that publishes them (or undoes them)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa

from shm._hint import Hint
from shm._layout import (
    FILE_MODE,
    OPEN_FLAGS,
    SEGMENTS_DIR,
    TMP_PREFIX,
    generation_name,
    segment_name,
    segment_temp_name,
)

__all__ = ["Commit", "write_file"]

_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression=None, allow_64bit=True)
_IN_MEMORY_MAX = 16 * 1024 * 1024


class Commit:
    """The files of generation ``generation``: segment files and then the generation file are
    written as temp files; :meth:`switch` renames the segment files into place (no reader
    looks at them before a manifest names them), announces the generation in the hint and
    renames the generation file, the one step that makes it visible. :meth:`undo` removes
    everything and announces ``live`` again."""

    def __init__(self, directory: Path, generation: int, hint: Hint, live: int) -> None:
        self._directory = directory
        self._generation = generation
        self._hint = hint
        self._live = live
        self._segments: list[tuple[Path, Path]] = []
        self._temp: Path | None = None
        self._placed: list[Path] = []

    def add_segment(self, segment: int, schema: pa.Schema, batch: pa.RecordBatch) -> None:
        """Write ``segment``'s file as a temp file."""
        place = self._directory / SEGMENTS_DIR
        tmp = place / segment_temp_name(self._generation, segment)
        self._segments.append((tmp, place / segment_name(self._generation, segment)))
        write_file(tmp, schema, batch)

    def switch(self, schema: pa.Schema, batch: pa.RecordBatch) -> None:
        """Write the generation file, then publish: segments, hint, generation file."""
        self._temp = self._directory / f"{TMP_PREFIX}{self._generation}-{os.getpid()}"
        write_file(self._temp, schema, batch)
        for tmp, final in self._segments:
            os.replace(tmp, final)
            self._placed.append(final)
        # Announced before the rename: a reader seeing the new number rescans until the
        # file is there. Announced after it, a publisher killed in between would leave
        # every reader that holds the previous generation on it, while fresh readers
        # (a new worker) open the new one.
        self._hint.write(self._generation)
        os.replace(self._temp, self._directory / generation_name(self._generation))

    def undo(self) -> None:
        """Remove every file this commit wrote, then announce the live generation again.

        Files first: restoring the hint writes a file too, and on a full device that may fail
        as well; the commit's files must not be left behind by it."""
        temps = [tmp for tmp, _ in self._segments]
        for path in [*temps, *self._placed, *([self._temp] if self._temp else [])]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._hint.write(self._live)


def write_file(path: Path, schema: pa.Schema, batch: pa.RecordBatch) -> None:
    """``batch`` as an uncompressed Arrow IPC file at ``path`` (created, mode 0640).

    A batch of up to ``_IN_MEMORY_MAX`` bytes is serialised in memory and written with one
    system call: writing through a Python file object, which pyarrow calls for each of its
    many small writes, cost 80-100 µs more for a 2,200-row window (cold caches), on the
    path from an event to the readers. A larger one is written through the file object, so
    that a publication never holds a second copy of a large window in memory.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, FILE_MODE)
    try:
        # The mode given to open() is filtered by the umask; set it explicitly.
        os.fchmod(fd, FILE_MODE)
        if batch.nbytes <= _IN_MEMORY_MAX:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_file(sink, schema, options=_WRITE_OPTIONS) as writer:
                writer.write_batch(batch)
            data = memoryview(sink.getvalue())
            while data:
                data = data[os.write(fd, data) :]
        else:
            # The file object's close (leaving the block) flushes it; the fd stays ours.
            with (
                os.fdopen(fd, "wb", closefd=False) as handle,
                pa.ipc.new_file(handle, schema, options=_WRITE_OPTIONS) as writer,
            ):
                writer.write_batch(batch)
        os.fsync(fd)
    finally:
        os.close(fd)
