"""Open one generation file and prove it is what the protocol wrote, or say why not."""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from contract.series import DEFAULT_SERIES_ID
from shm._layout import OPEN_FLAGS, SEGMENTS_DIR, check_file, generation_name, segment_name
from shm._layouts import InlineLayout, Layout, Listing, SegmentedLayout
from shm._manifest import Manifest, parse_manifest
from shm._meta import (
    EPOCH_KEY,
    GENERATION_KEY,
    PUBLISHED_AT_KEY,
    RESERVED_PREFIX,
    SEGMENTS_KEY,
    Epoch,
    parse_count,
)
from shm._segment import Expected, MappedSegment, Segment
from shm.errors import CorruptGenerationError, UnsafePathError
from shm.snapshot import Snapshot

SchemaCheck = Callable[[pa.Schema], str | None]
"""Returns why a schema is unusable for its caller, or None when it is fine."""


@dataclass(frozen=True, slots=True)
class GenerationFile:
    """A generation file, checked: its protocol metadata and either its data (inline) or
    its manifest. Segment files are not opened."""

    generation: int
    epoch: Epoch
    published_at_ns: int
    metadata: dict[str, str]
    table: pa.Table
    manifest: Manifest | None


def read_generation(
    directory: Path,
    generation: int,
    trusted: frozenset[int],
    check_schema: SchemaCheck | None = None,
) -> GenerationFile:
    """Map ``gen-<generation>.arrow`` read-only and parse it zero-copy.

    Raises FileNotFoundError when the file is gone (a race with pruning),
    :class:`UnsafePathError` for anything that is not a trusted regular file or cannot be
    opened (a symlink, socket, FIFO...), and :class:`CorruptGenerationError` for a file that is
    not a valid Arrow IPC file with the protocol's metadata, or whose data schema
    ``check_schema`` refuses.
    """
    path = directory / generation_name(generation)
    mapping = _map(path, path.name, trusted, dir_fd=None)
    try:
        table = pa.ipc.open_file(pa.py_buffer(mapping)).read_all()
        return _parse(path, generation, table, check_schema)
    except (pa.ArrowException, OSError, ValueError) as exc:
        with contextlib.suppress(BufferError):
            mapping.close()
        if isinstance(exc, CorruptGenerationError):
            raise
        raise CorruptGenerationError(f"{path.name} is not a valid Arrow IPC file: {exc}") from None


def open_generation(
    directory: Path,
    generation: int,
    trusted: frozenset[int],
    check_schema: SchemaCheck | None = None,
    *,
    previous: Snapshot | None = None,
    default_series_id: str = DEFAULT_SERIES_ID,
) -> Snapshot:
    """The generation as a :class:`Snapshot` (errors as :func:`read_generation`).

    A manifest's segment files are all mapped now, so that the snapshot stays whole after the
    publisher unlinks them; those that ``previous`` (a snapshot of the same publisher run and
    segment count) already mapped are reused as they are, with everything derived from them.
    Only mapped, not read: pages are read when a lookup touches them. A segment file that is
    refused (missing while the manifest is there, not a trusted regular file) makes the whole
    generation :class:`CorruptGenerationError`.
    """
    found = read_generation(directory, generation, trusted, check_schema)
    layout: Layout
    if found.manifest is None:
        layout = InlineLayout(found.epoch, generation, found.table, default_series_id)
    else:
        before = previous._layout if previous is not None else None
        reuse = before if isinstance(before, SegmentedLayout) else None
        layout = _segmented(directory, found, found.manifest, trusted, reuse)
    return Snapshot(
        generation=generation,
        metadata=found.metadata,
        published_at_ns=found.published_at_ns,
        epoch=found.epoch,
        layout=layout,
    )


def _parse(
    path: Path, generation: int, table: pa.Table, check_schema: SchemaCheck | None
) -> GenerationFile:
    manifest = None
    try:
        raw = table.schema.metadata or {}
        metadata = {k.decode(): v.decode() for k, v in raw.items()}
        stored = parse_count(metadata.pop(GENERATION_KEY, ""), GENERATION_KEY)
        published_at_ns = parse_count(metadata.pop(PUBLISHED_AT_KEY, ""), PUBLISHED_AT_KEY)
        epoch = Epoch.parse(metadata.pop(EPOCH_KEY, ""))
        if SEGMENTS_KEY in metadata:
            manifest = parse_manifest(table, metadata, stored)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CorruptGenerationError(f"{path.name} has invalid protocol metadata: {exc}") from None
    if stored != generation:
        raise CorruptGenerationError(
            f"{path.name} records generation {stored}, its name says {generation}"
        )
    data = table.replace_schema_metadata(None)
    schema = manifest.data_schema if manifest is not None else data.schema
    if check_schema is not None and (problem := check_schema(schema)) is not None:
        raise CorruptGenerationError(f"{path.name}: {problem}")
    user = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return GenerationFile(generation, epoch, published_at_ns, user, data, manifest)


def _segmented(
    directory: Path,
    found: GenerationFile,
    manifest: Manifest,
    trusted: frozenset[int],
    previous: SegmentedLayout | None,
) -> SegmentedLayout:
    epoch = found.epoch
    listing_key = (epoch, manifest.segments, manifest.series_set)
    entries: list[Segment | None]
    if (
        previous is not None
        and previous.epoch == epoch
        and previous.manifest.segments == manifest.segments
        and previous.manifest.data_schema is manifest.data_schema
    ):
        entries = list(previous.entries)
        changed = np.flatnonzero(manifest.written != previous.manifest.written)
        listing = previous.listing if previous.listing.key == listing_key else Listing(listing_key)
    else:
        entries = [None] * manifest.segments
        changed = np.flatnonzero(manifest.written)
        listing = Listing(listing_key)
    opened: list[MappedSegment] = []
    needed = [int(i) for i in changed if manifest.written[i]]
    changed_list = [int(i) for i in changed]
    try:
        dir_fd = _open_segments_dir(directory, trusted) if needed else -1
        try:
            segment_schema = manifest.segment_schema
            for i in changed_list:
                entries[i] = None
            for i in needed:
                written = int(manifest.written[i])
                name = segment_name(written, i)
                expected = Expected(
                    segment_schema,
                    manifest.segments,
                    int(manifest.series[i]),
                    int(manifest.rows[i]),
                )
                shown = f"{SEGMENTS_DIR}/{name}"
                try:
                    mapping = _map(directory / SEGMENTS_DIR / name, shown, trusted, dir_fd=dir_fd)
                except FileNotFoundError:
                    if not os.path.lexists(directory / generation_name(found.generation)):
                        raise  # the manifest was pruned meanwhile: a race, not a fault
                    raise CorruptGenerationError(
                        f"{generation_name(found.generation)} names {shown}, which is missing"
                    ) from None
                segment = MappedSegment((epoch, written, i), name, mapping, expected)
                opened.append(segment)
                entries[i] = segment
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)
    except BaseException:
        for segment in opened:
            segment.release()
        raise
    return SegmentedLayout(epoch, manifest, entries, listing)


def _open_segments_dir(directory: Path, trusted: frozenset[int]) -> int:
    path = directory / SEGMENTS_DIR
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | OPEN_FLAGS)
    except FileNotFoundError:
        raise CorruptGenerationError(f"{SEGMENTS_DIR}/ is missing") from None
    except OSError as exc:
        raise UnsafePathError(f"{SEGMENTS_DIR}/ cannot be opened: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if st.st_mode & stat.S_IWOTH or st.st_uid not in trusted:
        os.close(fd)
        raise UnsafePathError(
            f"{SEGMENTS_DIR}/ is writable by every user or owned by an untrusted uid {st.st_uid}"
        )
    return fd


def _map(path: Path, shown: str, trusted: frozenset[int], *, dir_fd: int | None) -> mmap.mmap:
    """Map a trusted regular file read-only (``dir_fd``: open ``path.name`` relative to it)."""
    try:
        # O_NONBLOCK: opening a FIFO planted under a protocol name must fail the type check
        # below, not block forever.
        flags = os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS
        fd = os.open(path.name if dir_fd is not None else path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafePathError(f"{shown}: cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        check_file(path, st, trusted, shown=shown)
        if st.st_size == 0:
            raise CorruptGenerationError(f"{shown} is empty")
        return mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
