"""The reading side of the protocol: what a Gunicorn worker calls on every request."""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import threading
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa

from shm._hint import Hint
from shm._layout import (
    OPEN_FLAGS,
    check_directory,
    check_file,
    generation_name,
    list_generations,
)
from shm._meta import GENERATION_KEY, PUBLISHED_AT_KEY, RESERVED_PREFIX
from shm.errors import CorruptGenerationError
from shm.snapshot import Snapshot

__all__ = ["Reader"]

log = logging.getLogger(__name__)

# A generation can be unlinked between listing the directory and opening it (the publisher keeps
# only ``keep`` files); listing again finds a newer one. Bounded so a broken directory cannot spin.
_OPEN_ATTEMPTS = 5


class Reader:
    """Gives the newest published generation of ``directory`` as a :class:`Snapshot`.

    Cost: when the generation is unchanged, :meth:`current` reads an 8-byte counter from a mapped
    hint file and returns the cached snapshot (no system call, no copy). On a new generation it
    lists the directory, maps the newest file read-only and opens it zero-copy, once per process.

    Safety:
      * Fork: the reader remembers its pid; in a forked child the first call drops everything the
        parent mapped and reopens, so a Gunicorn master's reader is never used by a worker.
      * Threads: any number of threads may call :meth:`current`; opening is serialised.
      * Monotonic: a reader never returns a lower generation than it returned before.
      * Trust: it refuses symlinks, non-regular files, world-writable paths and files owned by a
        uid outside ``trusted_uids`` (default: the directory's owner and this process's user),
        raising :class:`~shm.errors.UnsafePathError`.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, trusted_uids: Iterable[int] | None = None
    ) -> None:
        self._directory = Path(directory)
        self._explicit_uids = frozenset(trusted_uids) if trusted_uids is not None else None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._hint: Hint | None = None
        self._snapshot: Snapshot | None = None

    @property
    def directory(self) -> Path:
        """The directory this reader follows."""
        return self._directory

    def current(self) -> Snapshot | None:
        """The newest generation, or None while nothing has been published.

        Raises :class:`~shm.errors.UnsafePathError` for an untrusted directory or file and
        :class:`~shm.errors.CorruptGenerationError` for a file that is not valid Arrow IPC; in
        both cases the previously returned snapshot is unaffected.
        """
        if self._pid != os.getpid():
            self._after_fork()
        snapshot = self._snapshot
        hint = self._hint
        if snapshot is not None and hint is not None and hint.read() == snapshot.generation:
            return snapshot
        return self._refresh()

    def _after_fork(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # Drop, do not close: the parent may still be using these objects.
            self._hint = None
            self._snapshot = None
            self._lock = threading.Lock()
            self._pid = os.getpid()

    def _refresh(self) -> Snapshot | None:
        with self._lock:
            try:
                dir_stat = check_directory(self._directory)
            except FileNotFoundError:
                return self._snapshot
            if self._hint is None:
                self._hint = Hint.open_readonly(self._directory)
            trusted = self._explicit_uids or frozenset({dir_stat.st_uid, os.geteuid()})
            for _ in range(_OPEN_ATTEMPTS):
                generations = list_generations(self._directory)
                newest = generations[-1] if generations else 0
                held = self._snapshot.generation if self._snapshot is not None else 0
                if newest <= held:
                    return self._snapshot
                try:
                    self._snapshot = _open_generation(self._directory, newest, trusted)
                except FileNotFoundError:
                    continue
                log.debug("opened generation", extra={"generation": newest})
                return self._snapshot
            return self._snapshot


def _open_generation(directory: Path, generation: int, trusted: frozenset[int]) -> Snapshot:
    path = directory / generation_name(generation)
    # O_NONBLOCK: opening a FIFO planted under a generation name must fail the type check below,
    # not block the worker forever.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        check_file(path, st, trusted)
        if st.st_size == 0:
            raise CorruptGenerationError(f"{path} is empty")
        mapping = mmap.mmap(fd, st.st_size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)
    try:
        table = pa.ipc.open_file(pa.py_buffer(mapping)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        with contextlib.suppress(BufferError):
            mapping.close()
        raise CorruptGenerationError(f"{path} is not a valid Arrow IPC file: {exc}") from exc
    raw = table.schema.metadata or {}
    metadata = {k.decode(): v.decode() for k, v in raw.items()}
    stored_generation = int(metadata.pop(GENERATION_KEY, generation))
    published_at_ns = int(metadata.pop(PUBLISHED_AT_KEY, 0))
    if stored_generation != generation:
        raise CorruptGenerationError(
            f"{path} records generation {stored_generation}, its name says {generation}"
        )
    user = {k: v for k, v in metadata.items() if not k.startswith(RESERVED_PREFIX)}
    return Snapshot(
        generation=generation,
        table=table.replace_schema_metadata(None),
        metadata=user,
        published_at_ns=published_at_ns,
    )
