"""The writing side of the protocol: one publisher per directory."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from shm._hint import Hint
from shm._layout import (
    DIR_MODE,
    FILE_MODE,
    LOCK_NAME,
    OPEN_FLAGS,
    TMP_PREFIX,
    check_directory,
    generation_name,
    list_generations,
)
from shm._meta import GENERATION_KEY, PUBLISHED_AT_KEY, RESERVED_PREFIX
from shm.errors import PublisherLockedError, PublishError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression=None, allow_64bit=True)


class Publisher:
    """Publishes tables as numbered generations in ``directory``.

    Contract:
      * ``publish`` writes a temp file in the same directory and renames it into place, so a
        reader sees either the previous generation or the complete new one, never a partial file.
      * Generations strictly increase, across restarts too: the next one follows the highest
        found in the directory (file names and hint) when the publisher starts.
      * At most ``keep`` generations stay in the directory; older ones are unlinked (processes that
        still map them keep their pages until they let go).
      * A failed write (``ENOSPC`` included) raises :class:`PublishError`, removes its temp file
        and leaves the previous generation live; the next ``publish`` may succeed.
      * One publisher per directory: an exclusive ``flock`` is held until :meth:`close`; the kernel
        releases it if the process dies, so a killed publisher never blocks its successor.

    Not thread-safe: call ``publish`` from one thread.
    """

    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self._directory = Path(directory)
        self._keep = keep
        self._directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        st = check_directory(self._directory)
        if st.st_uid == os.geteuid():
            os.chmod(self._directory, DIR_MODE)
        self._lock_fd = _acquire_lock(self._directory)
        try:
            self._remove_stale_temps()
            self._hint = Hint.create_or_open(self._directory)
            existing = list_generations(self._directory)
            self._generation = max(existing[-1] if existing else 0, self._hint.read())
            self._hint.write(self._generation)
            self._prune()
        except BaseException:
            os.close(self._lock_fd)
            raise
        log.info(
            "publisher ready", extra={"directory": str(directory), "generation": self._generation}
        )

    @property
    def directory(self) -> Path:
        """The directory this publisher owns."""
        return self._directory

    @property
    def generation(self) -> int:
        """The last generation published (or recovered at start); 0 when there is none."""
        return self._generation

    def publish(self, table: pa.Table, *, metadata: Mapping[str, str] | None = None) -> int:
        """Write ``table`` as the next generation and return its number.

        ``metadata`` is stored with the data and handed back verbatim in ``Snapshot.metadata``;
        keys must not start with ``"shm."`` (reserved for the generation and publish time).
        """
        user_metadata = _check_metadata(metadata)
        generation = self._generation + 1
        published_at_ns = time.time_ns()
        batch = _single_batch(table)
        schema = batch.schema.with_metadata(
            {
                **user_metadata,
                GENERATION_KEY: str(generation),
                PUBLISHED_AT_KEY: str(published_at_ns),
            }
        )
        tmp = self._directory / f"{TMP_PREFIX}{generation}-{os.getpid()}"
        final = self._directory / generation_name(generation)
        try:
            _write_file(tmp, schema, batch)
            # Announced before the rename: a reader seeing the new number rescans until the
            # file is there. Announced after it, a publisher killed in between would leave
            # every reader that holds the previous generation on it, while fresh readers
            # (a new worker) open the new one.
            self._hint.write(generation)
            os.replace(tmp, final)
        except Exception as exc:
            self._hint.write(self._generation)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise PublishError(
                getattr(exc, "errno", None) or 0,
                f"could not publish generation {generation} in {self._directory}: {exc}; "
                f"generation {self._generation} stays live",
            ) from exc
        except BaseException:
            self._hint.write(self._generation)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        self._generation = generation
        self._prune()
        return generation

    def close(self) -> None:
        """Release the lock. Published generations stay for readers and the next publisher."""
        if self._lock_fd >= 0:
            self._hint.close()
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _remove_stale_temps(self) -> None:
        for name in os.listdir(self._directory):
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    (self._directory / name).unlink()
                log.warning("removed stale temp file", extra={"file": name})

    def _prune(self) -> None:
        for generation in list_generations(self._directory)[: -self._keep]:
            with contextlib.suppress(FileNotFoundError):
                (self._directory / generation_name(generation)).unlink()


def _acquire_lock(directory: Path) -> int:
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | OPEN_FLAGS, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise PublisherLockedError(
            f"another publisher holds {directory / LOCK_NAME}; only one may write a directory"
        ) from None
    return fd


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    result = dict(metadata or {})
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata keys and values must be str, got {key!r}: {value!r}")
        if key.startswith(RESERVED_PREFIX):
            raise ValueError(f"metadata key {key!r} uses the reserved prefix {RESERVED_PREFIX!r}")
    return result


def _single_batch(table: pa.Table) -> pa.RecordBatch:
    """One record batch holding all rows: multi-batch files would force readers to concatenate."""
    arrays = [column.combine_chunks() for column in table.columns]
    return pa.RecordBatch.from_arrays(arrays, schema=table.schema.remove_metadata())


def _write_file(path: Path, schema: pa.Schema, batch: pa.RecordBatch) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, FILE_MODE)
    # The mode given to open() is filtered by the umask; set it explicitly.
    os.fchmod(fd, FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        with pa.ipc.new_file(handle, schema, options=_WRITE_OPTIONS) as writer:
            writer.write_batch(batch)
        handle.flush()
        os.fsync(handle.fileno())
