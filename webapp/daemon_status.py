"""The daemon's status file as this worker last read it (:class:`contract.status.DaemonStatus`)."""

from __future__ import annotations

import os
from pathlib import Path

from contract.status import STATUS_FILE, DaemonStatus

__all__ = ["StatusFileCache"]

_Key = tuple[int, int, int]


class StatusFileCache:
    """The status file in ``directory``, re-read only when its (inode, mtime, size) changes.

    A request costs one ``os.stat``. Thread-safe by construction: the cache is one immutable
    (key, value) pair replaced in a single assignment, so a thread never sees one file's key
    with another file's content.
    """

    def __init__(self, directory: Path) -> None:
        self._path = directory / STATUS_FILE
        self._cache: tuple[_Key, DaemonStatus | None] | None = None

    def read(self) -> DaemonStatus | None:
        """The daemon's status, or None when the file is absent or not a JSON object."""
        try:
            st = os.stat(self._path)
        except OSError:
            self._cache = None
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cache = self._cache
        if cache is not None and cache[0] == key:
            return cache[1]
        try:
            status = DaemonStatus.from_bytes(self._path.read_bytes())
        except OSError:
            status = None
        self._cache = (key, status)
        return status
