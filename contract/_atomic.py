"""Atomic file replacement inside the shm directory (temp file + ``os.replace``, mode 0640)."""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

__all__ = ["FILE_MODE", "temp_target", "write_atomic"]

FILE_MODE = 0o640
_TEMP = re.compile(r"\A\.(.+)\.[0-9]+\.part\Z")


def temp_target(name: str) -> str | None:
    """The name a :func:`write_atomic` temp file called ``name`` was to become, or None."""
    match = _TEMP.match(name)
    return match.group(1) if match else None


def write_atomic(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new content, never a mix.

    The temp name (``.<name>.<pid>.part``) is private to this process and removed on failure;
    threads of one process that write the same ``path`` must take turns (the daemon's
    :class:`cache_daemon.status.StatusFile` holds a lock), or one thread's rename finds the
    temp file already renamed by the other.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
    )
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if fsync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
