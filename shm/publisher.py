"""The writing side of the protocol: one publisher per directory."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from shm._generation import open_generation
from shm._hint import Hint
from shm._layout import (
    DIR_MODE,
    FILE_MODE,
    LOCK_NAME,
    MARKER_NAME,
    OPEN_FLAGS,
    TMP_PREFIX,
    check_directory,
    generation_name,
    is_fixed_name,
    is_temp_name,
    list_generations,
)
from shm._meta import EPOCH_KEY, GENERATION_KEY, PUBLISHED_AT_KEY, RESERVED_PREFIX, Epoch
from shm.errors import PublisherLockedError, PublishError, ShmError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression=None, allow_64bit=True)
_NAME_ATTEMPTS = 64


class Publisher:
    """Publishes tables as numbered generations in ``directory``.

    Contract:
      * ``publish`` writes a temp file in the same directory and renames it into place, so a
        reader sees either the previous generation or the complete new one, never a partial file.
      * Each publisher run has an :class:`~shm.Epoch`, recorded in every generation it writes
        and in the hint; readers follow the epoch of the publisher holding the lock.
        Generations strictly increase within a run and continue the previous run's numbering
        (recovered from the hint), but readers do not rely on numbers across epochs: a hint
        that is missing or unusable simply starts the numbering again at 1.
      * At most ``keep`` generations written by this publisher, or by earlier runs of it, stay
        in the directory; older ones are unlinked (processes that still map them keep their
        pages until they let go). Files it did not write are never deleted, never read and
        never decide its numbering; a name taken by one is skipped.
      * A failed write (``ENOSPC`` included) raises :class:`PublishError`, removes its temp file
        and leaves the previous generation live; the next ``publish`` may succeed.
      * One publisher per directory: an exclusive ``flock`` is held until :meth:`close`; the kernel
        releases it if the process dies, so a killed publisher never blocks its successor.
      * The directory is created if needed (0750) and marked as a publisher's directory (see
        :func:`shm.check_adoptable`, which a program should call first on a directory it is
        given).

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
            _mark(self._directory)
            self._remove_stale_temps()
            self._epoch = Epoch.new()
            self._hint, self._generation, previous = Hint.take_over(self._directory, self._epoch)
            self._owned = _earlier_runs(self._directory, self._epoch, previous)
            self._prune()
        except BaseException:
            os.close(self._lock_fd)
            raise
        log.info(
            "publisher ready",
            extra={
                "directory": str(directory),
                "generation": self._generation,
                "epoch": str(self._epoch),
            },
        )

    @property
    def directory(self) -> Path:
        """The directory this publisher owns."""
        return self._directory

    @property
    def generation(self) -> int:
        """The last generation published (or recovered at start); 0 when there is none."""
        return self._generation

    @property
    def epoch(self) -> Epoch:
        """This run's epoch."""
        return self._epoch

    def publish(self, table: pa.Table, *, metadata: Mapping[str, str] | None = None) -> int:
        """Write ``table`` as the next generation and return its number.

        ``metadata`` is stored with the data and handed back verbatim in ``Snapshot.metadata``;
        keys must not start with ``"shm."`` (reserved for the generation, epoch and publish
        time).
        """
        user_metadata = _check_metadata(metadata)
        generation = self._free_generation()
        published_at_ns = time.time_ns()
        batch = _single_batch(table)
        schema = batch.schema.with_metadata(
            {
                **user_metadata,
                GENERATION_KEY: str(generation),
                PUBLISHED_AT_KEY: str(published_at_ns),
                EPOCH_KEY: str(self._epoch),
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
        self._owned.append(generation)
        self._prune()
        return generation

    def strays(self, also_ours: Callable[[str], bool] = lambda _name: False) -> list[str]:
        """Names in the directory that neither this publisher (this run or an earlier one)
        wrote nor ``also_ours`` accepts, sorted: files a program may want to refuse to
        share its directory with."""
        owned = {generation_name(g) for g in self._owned}
        return sorted(
            name
            for name in os.listdir(self._directory)
            if not (name in owned or is_fixed_name(name) or is_temp_name(name) or also_ours(name))
        )

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

    def _free_generation(self) -> int:
        """The next number whose name no file holds (one written by someone else is left
        alone: replacing it would make a planted directory fail every publication)."""
        generation = self._generation + 1
        for _ in range(_NAME_ATTEMPTS):
            if not os.path.lexists(self._directory / generation_name(generation)):
                return generation
            log.warning(
                "a file this publisher did not write holds the next generation's name; skipped",
                extra={"file": generation_name(generation)},
            )
            generation += 1
        raise PublishError(
            errno.EEXIST,
            f"{_NAME_ATTEMPTS} generation names after {self._generation} are taken by files "
            f"this publisher did not write in {self._directory}",
        )

    def _remove_stale_temps(self) -> None:
        for name in os.listdir(self._directory):
            if is_temp_name(name):
                with contextlib.suppress(FileNotFoundError):
                    (self._directory / name).unlink()
                log.warning("removed stale temp file", extra={"file": name})

    def _prune(self) -> None:
        while len(self._owned) > self._keep:
            generation = self._owned.pop(0)
            with contextlib.suppress(FileNotFoundError):
                (self._directory / generation_name(generation)).unlink()


def _mark(directory: Path) -> None:
    path = directory / MARKER_NAME
    if not os.path.lexists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, b"shm publication directory (see the shm package)\n")
        finally:
            os.close(fd)


def _earlier_runs(directory: Path, epoch: Epoch, previous: Epoch | None) -> list[int]:
    """Generations written by earlier runs of a publisher of this user, ascending: valid
    protocol files of the previous run (named by the hint) or of an earlier epoch. Anything
    else is not this publisher's to delete."""
    own = frozenset({os.geteuid()})
    found = []
    for generation in list_generations(directory):
        try:
            snapshot = open_generation(directory, generation, own)
        except (ShmError, OSError):
            continue
        if snapshot.epoch == previous or snapshot.epoch < epoch:
            found.append(generation)
    return found


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
