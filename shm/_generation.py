"""Open one generation file and prove it is what the protocol wrote, or say why not."""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from shm._layout import OPEN_FLAGS, check_file, generation_name
from shm._meta import (
    EPOCH_KEY,
    GENERATION_KEY,
    PUBLISHED_AT_KEY,
    RESERVED_PREFIX,
    Epoch,
    parse_count,
)
from shm.errors import CorruptGenerationError, UnsafePathError
from shm.snapshot import Snapshot

SchemaCheck = Callable[[pa.Schema], str | None]
"""Returns why a schema is unusable for its caller, or None when it is fine."""


def open_generation(
    directory: Path,
    generation: int,
    trusted: frozenset[int],
    check_schema: SchemaCheck | None = None,
) -> Snapshot:
    """Map ``gen-<generation>.arrow`` read-only and open it zero-copy.

    Raises FileNotFoundError when the file is gone (a race with pruning),
    :class:`UnsafePathError` for anything that is not a trusted regular file or cannot be
    opened (a symlink, socket, FIFO...), and :class:`CorruptGenerationError` for a file that is
    not a valid Arrow IPC file with the protocol's metadata, or that ``check_schema`` refuses.
    """
    path = directory / generation_name(generation)
    try:
        # O_NONBLOCK: opening a FIFO planted under a generation name must fail the type check
        # below, not block forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnsafePathError(f"{path.name}: cannot be opened: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        check_file(path, st, trusted)
        if st.st_size == 0:
            raise CorruptGenerationError(f"{path.name} is empty")
        mapping = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    try:
        table = pa.ipc.open_file(pa.py_buffer(mapping)).read_all()
        return _snapshot(path, generation, table, check_schema)
    except (pa.ArrowException, OSError, ValueError) as exc:
        with contextlib.suppress(BufferError):
            mapping.close()
        if isinstance(exc, CorruptGenerationError):
            raise
        raise CorruptGenerationError(f"{path.name} is not a valid Arrow IPC file: {exc}") from None


def _snapshot(
    path: Path, generation: int, table: pa.Table, check_schema: SchemaCheck | None
) -> Snapshot:
    try:
        raw = table.schema.metadata or {}
        metadata = {k.decode(): v.decode() for k, v in raw.items()}
        stored = parse_count(metadata.pop(GENERATION_KEY, ""), GENERATION_KEY)
        published_at_ns = parse_count(metadata.pop(PUBLISHED_AT_KEY, ""), PUBLISHED_AT_KEY)
        epoch = Epoch.parse(metadata.pop(EPOCH_KEY, ""))
    except ValueError as exc:  # UnicodeDecodeError included
        raise CorruptGenerationError(f"{path.name} has invalid protocol metadata: {exc}") from None
    if stored != generation:
        raise CorruptGenerationError(
            f"{path.name} records generation {stored}, its name says {generation}"
        )
    data = table.replace_schema_metadata(None)
    if check_schema is not None and (problem := check_schema(data.schema)) is not None:
        raise CorruptGenerationError(f"{path.name}: {problem}")
    user = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return Snapshot(
        generation=generation,
        table=data,
        metadata=user,
        published_at_ns=published_at_ns,
        epoch=epoch,
    )
