"""The generation hint: an 8-byte counter in a small shared file.

The publisher stores each new generation there just before its rename; readers map the file once
and compare the counter with the generation they hold, which costs a memory load instead of a
system call. It is only a hint: the directory listing is the truth. A torn or stale value costs one
directory scan, never a wrong answer, because readers re-derive the generation from file names.

The file is created once with its final size through a temp file and ``os.replace`` and is never
truncated or replaced afterwards, so a mapping never outlives its inode's contents (no SIGBUS) and
every process keeps seeing the same inode.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from shm._layout import FILE_MODE, HINT_NAME, OPEN_FLAGS

_COUNTER = struct.Struct("<Q")
HINT_SIZE = _COUNTER.size


class Hint:
    """A mapped view of ``generation.hint``. Writable only when opened by the publisher."""

    def __init__(self, mapping: mmap.mmap) -> None:
        self._mapping = mapping

    @classmethod
    def create_or_open(cls, directory: Path) -> Hint:
        """Open the hint for writing, creating it atomically at its full size if absent."""
        path = directory / HINT_NAME
        if not path.exists():
            tmp = directory / f".tmp-hint-{os.getpid()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | OPEN_FLAGS, FILE_MODE)
            try:
                os.fchmod(fd, FILE_MODE)
                os.write(fd, _COUNTER.pack(0))
            finally:
                os.close(fd)
            os.replace(tmp, path)
        return cls(_map(path, writable=True))

    @classmethod
    def open_readonly(cls, directory: Path) -> Hint | None:
        """Map the hint read-only, or None when no publisher has created it yet."""
        try:
            return cls(_map(directory / HINT_NAME, writable=False))
        except (FileNotFoundError, ValueError):
            return None

    def read(self) -> int:
        """The generation last announced (0 before the first publication)."""
        return int(_COUNTER.unpack_from(self._mapping, 0)[0])

    def write(self, generation: int) -> None:
        """Announce ``generation`` to readers."""
        _COUNTER.pack_into(self._mapping, 0, generation)

    def close(self) -> None:
        """Unmap the file."""
        self._mapping.close()


def _map(path: Path, *, writable: bool) -> mmap.mmap:
    flags = (os.O_RDWR if writable else os.O_RDONLY) | OPEN_FLAGS
    fd = os.open(path, flags)
    try:
        if os.fstat(fd).st_size < HINT_SIZE:
            raise ValueError(f"{path} is shorter than {HINT_SIZE} bytes")
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, HINT_SIZE, access=access)
    finally:
        os.close(fd)
