"""May a publisher adopt this directory? The check a program runs on a directory it is given."""

from __future__ import annotations

import os
from pathlib import Path

from shm._layout import MARKER_NAME, check_directory
from shm.errors import ForeignDirectoryError

__all__ = ["check_adoptable"]

# Shared roots a publisher must never take over, even empty: every other program's files live
# (or will live) there.
_SHARED_ROOTS = ("/", "/dev/shm")  # noqa: S108
_SHOWN = 5


def check_adoptable(directory: str | os.PathLike[str]) -> None:
    """Return when a publisher may use ``directory``: it does not exist yet, is empty, or
    carries the marker a publisher leaves (``.shm-publisher``).

    Raises :class:`~shm.errors.ForeignDirectoryError` for ``/``, ``/dev/shm`` itself or a
    non-empty directory without the marker (nothing in it is touched), and
    :class:`~shm.errors.UnsafePathError` for a path that is a symlink, not a directory or
    writable by every user. Other ``OSError``\\ s (a parent that is a file, no permission)
    propagate.
    """
    path = Path(directory)
    real = os.path.realpath(path)
    if real in _SHARED_ROOTS:
        raise ForeignDirectoryError(
            f"{path} is {real} itself, shared with other programs; use a subdirectory of it"
        )
    try:
        check_directory(path)
    except FileNotFoundError:
        return
    names = sorted(os.listdir(path))
    if names and MARKER_NAME not in names:
        shown = ", ".join(names[:_SHOWN]) + (
            f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
        )
        raise ForeignDirectoryError(
            f"{path} is not empty and no publisher created it (no {MARKER_NAME}); it holds "
            f"{shown}. Give an empty or new directory"
        )
