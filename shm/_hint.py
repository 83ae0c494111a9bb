"""The hint: what the publisher holding the lock last announced, in a small mapped file.

Layout (little-endian u64 each)::

    0   generation   newest generation announced (the fast path reads only this)
    8   epoch start  \\ the epoch of the publisher that holds the lock
    16  epoch token  /
    24  first        first generation of that epoch; generation < first: nothing announced yet

The publisher stores each new generation just before its rename; readers map the file once and
compare the counter with the value they settled on, which costs a memory load instead of a
system call. A torn or stale value costs one directory scan, never a wrong answer: readers
check every announced file's own metadata.

The file is created with its final size through a temp file and ``os.replace`` and is never
truncated or replaced by its publisher afterwards, so a mapping never outlives its inode's
contents (no SIGBUS) and every process keeps seeing the same inode. A new inode (the directory
was wiped and a publisher started on it) is noticed by readers through a periodic ``stat``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from shm._layout import FILE_MODE, HINT_NAME, OPEN_FLAGS, check_file
from shm._meta import MAX_VALUE, Epoch
from shm.errors import UnsafePathError

_COUNTER = struct.Struct("<Q")
_LAYOUT = struct.Struct("<QQQQ")
HINT_SIZE = _LAYOUT.size
# Numbering restarts (in a new hint file) past this: far beyond any real run, and keeps every
# generation below 2**63.
_MAX_CONTINUED = 2**62

Identity = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Announcement:
    """One consistent reading of the hint."""

    generation: int
    epoch: Epoch | None
    first: int

    @property
    def published(self) -> bool:
        """The publisher of ``epoch`` has announced at least one generation."""
        return self.epoch is not None and self.first <= self.generation


class Hint:
    """A mapped view of ``generation.hint``. Writable only when opened by the publisher."""

    def __init__(self, mapping: mmap.mmap, identity: Identity) -> None:
        self._mapping = mapping
        self.identity = identity

    @classmethod
    def take_over(cls, directory: Path, epoch: Epoch) -> tuple[Hint, int, Epoch | None]:
        """Open the hint for a new publisher run: returns it, the generation to continue
        from (0 when the hint was absent or unusable, in which case a new file replaces it)
        and the previous run's epoch.

        ``epoch`` is recorded with ``first`` = continued generation + 1 (nothing announced).
        """
        hint: Hint | None = None
        with contextlib.suppress(OSError, ValueError, UnsafePathError):
            hint = cls(*_map(directory / HINT_NAME, writable=True, trusted=None))
        generation = 0
        previous = None
        if hint is not None:
            found = hint.announcement()
            previous = found.epoch
            if found.epoch is not None and found.generation < _MAX_CONTINUED:
                generation = found.generation
            else:
                hint.close()
                hint = None
        if hint is None:
            _create(directory)
            hint = cls(*_map(directory / HINT_NAME, writable=True, trusted=None))
        hint._begin(epoch, generation)
        return hint, generation, previous

    @classmethod
    def open_readonly(cls, directory: Path, trusted: frozenset[int]) -> Hint | None:
        """Map the hint read-only; None when absent or too short (no publisher wrote it yet).

        Raises :class:`UnsafePathError` for a hint that is not a regular file of a trusted
        owner, or that cannot be opened (a symlink, a socket...).
        """
        try:
            return cls(*_map(directory / HINT_NAME, writable=False, trusted=trusted))
        except (FileNotFoundError, ValueError):
            return None
        except OSError as exc:
            if isinstance(exc, UnsafePathError):
                raise
            raise UnsafePathError(f"{HINT_NAME}: {exc.strerror or exc}") from None

    def read(self) -> int:
        """The generation last announced: the readers' fast path."""
        return int(_COUNTER.unpack_from(self._mapping, 0)[0])

    def announcement(self) -> Announcement:
        """All fields, read until two readings agree (the publisher writes them one by one)."""
        raw = _LAYOUT.unpack_from(self._mapping, 0)
        for _ in range(3):
            again = _LAYOUT.unpack_from(self._mapping, 0)
            if again == raw:
                break
            raw = again
        generation, start_ns, token, first = raw
        epoch = Epoch(start_ns, token)
        valid = epoch.valid() and 0 < first <= MAX_VALUE and generation <= MAX_VALUE
        return Announcement(generation, epoch if valid else None, first)

    def write(self, generation: int) -> None:
        """Announce ``generation`` to readers."""
        _COUNTER.pack_into(self._mapping, 0, generation)

    def _begin(self, epoch: Epoch, generation: int) -> None:
        # Readers that catch these half written see an epoch without files, or a file of
        # another epoch: both read as "nothing new yet", and the counter is unchanged, so no
        # reader on the fast path even looks.
        _LAYOUT.pack_into(self._mapping, 0, generation, epoch.start_ns, epoch.token, generation + 1)

    def close(self) -> None:
        """Unmap the file."""
        self._mapping.close()


def _create(directory: Path) -> None:
    tmp = directory / f".tmp-hint-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | OPEN_FLAGS, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, bytes(HINT_SIZE))
    finally:
        os.close(fd)
    os.replace(tmp, directory / HINT_NAME)


def _map(
    path: Path, *, writable: bool, trusted: frozenset[int] | None
) -> tuple[mmap.mmap, Identity]:
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NONBLOCK | OPEN_FLAGS
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if trusted is not None:
            check_file(path, st, trusted)
        elif not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            raise ValueError(f"{path} is not a regular file of this user")
        if st.st_size < HINT_SIZE:
            raise ValueError(f"{path} is shorter than {HINT_SIZE} bytes")
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(fd, HINT_SIZE, access=access), (st.st_dev, st.st_ino)
    finally:
        os.close(fd)


def identity_of(directory: Path) -> Identity | None:
    """(device, inode) of the hint now in ``directory``; None when there is none."""
    try:
        st = os.stat(directory / HINT_NAME, follow_symlinks=False)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
