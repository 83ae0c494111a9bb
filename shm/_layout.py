"""Names, modes and ownership checks shared by the publisher and the reader.

Directory layout (all names are fixed; the publisher never touches other files):

``gen-<20 digits>.arrow``
    One published generation: an uncompressed Arrow IPC *file* holding one record batch, its
    schema metadata recording its generation, publication time and the publisher's epoch.
    Either the data itself (an *inline* generation, written by ``Publisher.publish``) or, when
    the metadata holds ``shm.segments``, a *manifest*: one row per segment naming the
    generation whose segment file holds that segment's series (``Publisher.publish_segments``;
    see ``_manifest``). Written once, never modified afterwards; unlinked when superseded
    beyond ``keep`` by the publisher that wrote it (or the next run of it, which adopts the
    files of earlier runs).
``segments/seg-<20 digits>-<7 digits>.arrow``
    The series of one segment as written by one generation (the first number) for one
    segment index (the second): an Arrow IPC file, immutable once renamed into place, named by
    that generation's manifest and by every later one that carries the segment over
    unchanged. Unlinked by its publisher once no kept manifest names it.
``.tmp-<generation>-<pid>``, ``.tmp-hint-<pid>``, ``segments/.tmp-<generation>-<segment>-<pid>``
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
SEGMENTS_DIR = "segments"
OPEN_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
# Segment indexes have 7 digits in file names.
MAX_SEGMENTS = 2**20

_GEN_RE = re.compile(r"\Agen-([0-9]{20})\.arrow\Z")
_TMP_RE = re.compile(r"\A\.tmp-(?:[0-9]{1,20}|hint)-[0-9]{1,10}\Z")
_SEG_RE = re.compile(r"\Aseg-([0-9]{20})-([0-9]{7})\.arrow\Z")
_SEG_TMP_RE = re.compile(r"\A\.tmp-[0-9]{1,20}-[0-9]{1,7}-[0-9]{1,10}\Z")


def is_temp_name(name: str) -> bool:
    """True for the name of a publisher's temp file (``.tmp-<generation|hint>-<pid>``)."""
    return _TMP_RE.match(name) is not None


def is_fixed_name(name: str) -> bool:
    """True for the hint, the lock, the marker and the segments directory."""
    return name in (HINT_NAME, LOCK_NAME, MARKER_NAME, SEGMENTS_DIR)


def segment_name(written: int, segment: int) -> str:
    """File name (in :data:`SEGMENTS_DIR`) of ``segment`` as generation ``written`` wrote it."""
    return f"seg-{written:020d}-{segment:07d}{GEN_SUFFIX}"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    """(written generation, segment) encoded in a segment file name, or None."""
    match = _SEG_RE.match(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def segment_temp_name(generation: int, segment: int) -> str:
    """Name of the temp file of ``segment`` while generation ``generation`` writes it."""
    return f"{TMP_PREFIX}{generation}-{segment}-{os.getpid()}"


def is_segment_temp_name(name: str) -> bool:
    """True for the name of a segment's temp file (``.tmp-<generation>-<segment>-<pid>``)."""
    return _SEG_TMP_RE.match(name) is not None


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


def check_file(
    path: Path, st: os.stat_result, trusted_uids: frozenset[int], *, shown: str | None = None
) -> None:
    """Refuse a file that is not regular, is writable by others, or has an untrusted owner.

    Messages name the file (``shown``, else its name), not its directory: they end up in HTTP
    replies.
    """
    name = shown or path.name
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(f"{name} is not a regular file")
    if st.st_mode & stat.S_IWOTH:
        raise UnsafePathError(f"{name} is writable by every user")
    if st.st_uid not in trusted_uids:
        raise UnsafePathError(
            f"{name} is owned by uid {st.st_uid}; trusted owners are {sorted(trusted_uids)}"
        )
