"""Names, modes and ownership checks shared by the publisher and the reader.

Directory layout (all names are fixed; the publisher never touches other files):

``gen-<20 digits>.arrow``
    One published generation: an uncompressed Arrow IPC *file* holding one record batch, its
    schema metadata recording its generation, publication time and the publisher's epoch.
    Written once, never modified afterwards; unlinked when superseded beyond ``keep`` by the
    publisher that wrote it (or the next run of it, which adopts the files of earlier runs).
``.tmp-<generation>-<pid>``, ``.tmp-hint-<pid>``
    A file being written. Renamed into place with ``os.replace`` when complete; a leftover
    one belongs to a writer that died and is removed by the next publisher.
``generation.hint``
    32 bytes: the newest announced generation and the live publisher's epoch (see ``_hint``).
``.lock``
    Held with ``flock`` by the single live publisher.
``.shm-publisher``
    Marker written by the first publisher in the directory, so that a program can tell a
    directory it may adopt from an unrelated one (see :func:`shm.check_adoptable`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from shm.errors import UnsafePathError

DIR_MODE = 0o750
FILE_MODE = 0o640
GEN_PREFIX = "gen-"
GEN_SUFFIX = ".arrow"
TMP_PREFIX = ".tmp-"
HINT_NAME = "generation.hint"
LOCK_NAME = ".lock"
MARKER_NAME = ".shm-publisher"
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC

_GEN_RE = re.compile(r"\Agen-([0-9]{20})\.arrow\Z")
_TMP_RE = re.compile(r"\A\.tmp-(?:[0-9]{1,20}|hint)-[0-9]{1,10}\Z")


def is_temp_name(name: str) -> bool:
    """True for the name of a publisher's temp file (``.tmp-<generation|hint>-<pid>``)."""
    return _TMP_RE.match(name) is not None


def is_fixed_name(name: str) -> bool:
    """True for the hint, the lock and the marker."""
    return name in (HINT_NAME, LOCK_NAME, MARKER_NAME)


def generation_name(generation: int) -> str:
    """File name of ``generation``; zero padded so that names sort like numbers."""
    return f"{GEN_PREFIX}{generation:020d}{GEN_SUFFIX}"


def parse_generation(name: str) -> int | None:
    """The generation encoded in a file name, or None when the name is not a generation file."""
    match = _GEN_RE.match(name)
    return int(match.group(1)) if match else None


def list_generations(directory: Path) -> list[int]:
    """Published generations present in ``directory``, ascending."""
    return sorted(_generations(os.listdir(directory)))


def _generations(names: Iterable[str]) -> Iterable[int]:
    for name in names:
        generation = parse_generation(name)
        if generation is not None:
            yield generation


def check_directory(directory: Path) -> os.stat_result:
    """Refuse a directory that is a symlink, not a directory, or writable by others."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        raise
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(f"{directory} is a symlink; refusing to follow it")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{directory} is not a directory")
    if st.st_mode & stat.S_IWOTH:
        raise UnsafePathError(
            f"{directory} is writable by every user (mode {stat.S_IMODE(st.st_mode):o}); "
            f"expected {DIR_MODE:o}"
        )
    return st


def check_file(path: Path, st: os.stat_result, trusted_uids: frozenset[int]) -> None:
    """Refuse a file that is not regular, is writable by others, or has an untrusted owner.

    Messages name the file, not its directory: they end up in HTTP replies.
    """
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{path.name} is not a regular file")
    if st.st_mode & stat.S_IWOTH:
        raise UnsafePathError(f"{path.name} is writable by every user")
    if st.st_uid not in trusted_uids:
        raise UnsafePathError(
            f"{path.name} is owned by uid {st.st_uid}; trusted owners are {sorted(trusted_uids)}"
        )
