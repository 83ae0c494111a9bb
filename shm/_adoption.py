"""What a new publisher run takes over from earlier runs: their files, and nothing else."""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import stat
from pathlib import Path

import pyarrow as pa

from shm._generation import read_generation
from shm._layout import (
    OPEN_FLAGS,
    SEGMENTS_DIR,
    check_directory,
    is_segment_temp_name,
    is_temp_name,
    list_generations,
    parse_segment_name,
)
from shm._meta import EPOCH_KEY, Epoch
from shm._retention import Retention
from shm.errors import ShmError

__all__ = ["adopt_earlier_runs", "remove_stale_temps", "segments_directory"]

log = logging.getLogger(__name__)


def segments_directory(directory: Path) -> Path | None:
    """``directory/segments`` when it is a safe directory (not a symlink, not writable by
    every user), else None (absent, or not this publisher's to touch)."""
    path = directory / SEGMENTS_DIR
    try:
        check_directory(path)
    except (OSError, ShmError):
        return None
    return path


def remove_stale_temps(directory: Path) -> None:
    """Remove the temp files of writers that died, in the directory and its segments."""
    places = [(directory, is_temp_name)]
    segments = segments_directory(directory)
    if segments is not None:
        places.append((segments, is_segment_temp_name))
    for place, is_temp in places:
        for name in os.listdir(place):
            if is_temp(name):
                with contextlib.suppress(FileNotFoundError):
                    (place / name).unlink()
                log.warning("removed stale temp file", extra={"file": name})


def adopt_earlier_runs(
    directory: Path, epoch: Epoch, previous: Epoch | None, retention: Retention
) -> None:
    """Hand ``retention`` the files earlier runs of a publisher of this user wrote: valid
    protocol files of the previous run (named by the hint) or of an earlier epoch. Segment
    files none of the adopted manifests names (a run killed between renaming its segments
    and its manifest) are deleted now. Anything else is not this publisher's to delete."""
    own = frozenset({os.geteuid()})

    def earlier(found: Epoch) -> bool:
        return found == previous or found < epoch

    for generation in list_generations(directory):
        try:
            found = read_generation(directory, generation, own)
        except (ShmError, OSError):
            continue
        if earlier(found.epoch):
            written = found.manifest.written.copy() if found.manifest is not None else None
            retention.add(generation, found.epoch, written)
    segments = segments_directory(directory)
    if segments is None:
        return
    referenced = retention.referenced()
    for name in sorted(os.listdir(segments)):
        if parse_segment_name(name) is None:
            continue
        written_by = _segment_epoch(segments / name, own)
        if written_by is None or not earlier(written_by):
            continue
        if name in referenced:
            retention.adopt_segment(name)
        else:
            with contextlib.suppress(FileNotFoundError):
                (segments / name).unlink()
            log.warning("removed a segment file no generation names", extra={"file": name})


def _segment_epoch(path: Path, own: frozenset[int]) -> Epoch | None:
    """The epoch recorded in a segment file of this user; None for anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid not in own or st.st_size == 0:
            return None
        mapping = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
        try:
            metadata = pa.ipc.open_file(pa.py_buffer(mapping)).schema.metadata or {}
            return Epoch.parse(metadata.get(EPOCH_KEY.encode(), b"").decode())
        finally:
            with contextlib.suppress(BufferError):
                mapping.close()
    except (OSError, ValueError, pa.ArrowException):
        return None
    finally:
        os.close(fd)
