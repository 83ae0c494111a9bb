"""The writing side of the protocol: one publisher per directory."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa

from shm._adoption import adopt_earlier_runs, remove_stale_temps, segments_directory
from shm._commit import Commit
from shm._hint import Hint
from shm._index import SeriesIndex
from shm._layout import (
    DIR_MODE,
    FILE_MODE,
    LOCK_NAME,
    MARKER_NAME,
    OPEN_FLAGS,
    SEGMENTS_DIR,
    check_directory,
    generation_name,
    is_fixed_name,
    is_segment_temp_name,
    is_temp_name,
    segment_name,
)
from shm._manifest import encode_schema, manifest_batch
from shm._meta import (
    EPOCH_KEY,
    GENERATION_KEY,
    PUBLISHED_AT_KEY,
    RESERVED_PREFIX,
    SCHEMA_KEY,
    SEGMENTS_KEY,
    SERIES_SET_KEY,
    Epoch,
)
from shm._retention import Retention
from shm._segment_writer import (
    RefusedTableError,
    SegmentState,
    check_segment_numbers,
    prepare_segment,
)
from shm.errors import PublisherLockedError, PublishError, UnsafePathError

__all__ = ["Publisher"]

log = logging.getLogger(__name__)

_NAME_ATTEMPTS = 64


class Publisher:
    """Publishes tables as numbered generations in ``directory``.

    Contract:
      * ``publish`` writes a temp file in the same directory and renames it into place, so a
        reader sees either the previous generation or the complete new one, never a partial file.
      * ``publish_segments`` writes only the segments that changed, each as a new immutable
        file in ``segments/``, then a small manifest naming the file of every segment (those
        that did not change are the previous generation's files, named again, not rewritten),
        renamed into place last: that rename is the generation switch, so a reader sees the
        old manifest or the new one, each naming only complete files.
      * Each publisher run has an :class:`~shm.Epoch`, recorded in every file it writes
        and in the hint; readers follow the epoch of the publisher holding the lock.
        Generations strictly increase within a run and continue the previous run's numbering
        (recovered from the hint), but readers do not rely on numbers across epochs: a hint
        that is missing or unusable simply starts the numbering again at 1.
      * At most ``keep`` generations written by this publisher, or by earlier runs of it, stay
        in the directory; older ones are unlinked (processes that still map them keep their
        pages until they let go), and so is every segment file no kept manifest names. Files
        it did not write are never deleted, never read and never decide its numbering; a
        name taken by one is skipped.
      * A failed write (``ENOSPC`` included) raises :class:`PublishError`, removes its temp
        files (and the segment files it already renamed) and leaves the previous generation
        live; the next publication may succeed.
      * One publisher per directory: an exclusive ``flock`` is held until :meth:`close`; the kernel
        releases it if the process dies, so a killed publisher never blocks its successor.
      * The directory is created if needed (0750) and marked as a publisher's directory (see
        :func:`shm.check_adoptable`, which a program should call first on a directory it is
        given).

    Not thread-safe: publish from one thread.
    """

    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self._directory = Path(directory)
        self._directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        st = check_directory(self._directory)
        if st.st_uid == os.geteuid():
            os.chmod(self._directory, DIR_MODE)
        self._lock_fd = _acquire_lock(self._directory)
        try:
            _mark(self._directory)
            remove_stale_temps(self._directory)
            self._epoch = Epoch.new()
            self._hint, self._generation, previous = Hint.take_over(self._directory, self._epoch)
            self._retention = Retention(self._directory, keep)
            adopt_earlier_runs(self._directory, self._epoch, previous, self._retention)
            self._retention.prune()
            self._state: SegmentState | None = None
            # The ids of each non-empty segment of the last segmented generation.
            self._ids: dict[int, pa.Array[Any]] = {}
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

    @property
    def segments(self) -> int | None:
        """The segment count of this run's last generation when ``publish_segments`` wrote
        it (the next call may then give only the segments that changed); else None."""
        return self._state.segments if self._state is not None else None

    def publish(self, table: pa.Table, *, metadata: Mapping[str, str] | None = None) -> int:
        """Write ``table`` as the next generation (one inline file) and return its number.

        ``metadata`` is stored with the data and handed back verbatim in ``Snapshot.metadata``;
        keys must not start with ``"shm."`` (reserved for the generation, epoch and publish
        time). The next ``publish_segments`` must give every segment.
        """
        user_metadata = _check_metadata(metadata)
        generation = self._free_generation(())
        batch = _single_batch(table)
        schema = batch.schema.with_metadata({**user_metadata, **self._protocol(generation)})
        self._commit(generation, lambda _commit: (schema, batch))
        self._state = None
        self._retention.add(generation, self._epoch, None)
        self._retention.prune()
        return generation

    def publish_segments(
        self,
        changed: Mapping[int, pa.Table | None],
        *,
        segments: int,
        metadata: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ) -> int:
        """Write the next generation as ``segments`` segments, of which only ``changed``
        are written; return its number. Cost: O(rows of the changed segments + segments),
        whatever the size of the others.

        ``changed`` maps a segment index (``0 <= i < segments``) to that segment's new table
        (None or an empty table: the segment is now empty). Every other segment carries over,
        unchanged, from this run's previous generation, which must have been written by
        ``publish_segments`` with the same ``segments``; otherwise (the first call of a run,
        after ``publish``, or to change ``segments``) ``changed`` must name every segment.

        Each table is a multi-series table: a ``series_id`` string column, a ``time``
        ``timestamp[ns]`` column without nulls and value columns, the same columns in every
        segment (and in the carried-over ones), rows sorted by ``series_id`` then ``time``,
        and only series that :func:`contract.series.segment_of` assigns to that segment.
        ``metadata`` as for :meth:`publish`, or a function returning it, called once after
        every table of ``changed`` was read (so that it may describe them). A table that
        breaks a rule, or metadata that does, raises ValueError (TypeError for metadata that
        is not text) naming the segment or the key and the rule; nothing is published and
        the files already written are removed.

        ``changed`` is read once, in its iteration order, each table checked and written
        before the next is asked for: a lazy mapping that builds each segment's table on
        demand keeps a large first generation to one segment's memory at a time.
        """
        if not callable(metadata):
            _check_metadata(metadata)
        state = (
            self._state if self._state is not None and self._state.segments == segments else None
        )
        check_segment_numbers(changed, segments, every=state is None)
        generation = self._free_generation(tuple(changed))
        indexes: dict[int, SeriesIndex | None] = {}
        ids = self._ids if state is not None else {}
        after = state

        def write(commit: Commit) -> tuple[pa.Schema, pa.RecordBatch]:
            nonlocal after
            data_schema = state.data_schema if state is not None else None
            for segment, table in changed.items():
                data_schema, item = prepare_segment(segment, table, segments, data_schema)
                indexes[segment] = item.index if item is not None else None
                if item is not None:
                    commit.add_segment(
                        segment, item.schema(self._epoch, generation, segments), item.batch
                    )
            if data_schema is None:
                raise RefusedTableError(
                    "every segment is None and no earlier generation gives the columns: give "
                    "at least one (empty) table"
                )
            base = state if state is not None else SegmentState.empty(segments, data_schema)
            after = base.after(generation, indexes, ids)
            batch = manifest_batch(after.written, after.series, after.rows)
            try:
                user_metadata = _check_metadata(metadata() if callable(metadata) else metadata)
            except (TypeError, ValueError) as exc:
                raise _RefusedMetadataError(exc) from exc
            return batch.schema.with_metadata(
                {
                    **user_metadata,
                    **self._protocol(generation),
                    SEGMENTS_KEY: str(segments),
                    SCHEMA_KEY: encode_schema(data_schema),
                    SERIES_SET_KEY: str(after.series_set),
                }
            ), batch

        if changed:
            self._make_segments_dir()
        self._commit(generation, write)
        assert after is not None
        self._state = after
        for segment, index in indexes.items():
            if index is None:
                ids.pop(segment, None)
            else:
                ids[segment] = index.ids
        self._ids = ids
        names = [segment_name(generation, s) for s, index in indexes.items() if index is not None]
        self._retention.add(generation, self._epoch, after.written, names)
        self._retention.prune()
        return generation

    def strays(self, also_ours: Callable[[str], bool] = lambda _name: False) -> list[str]:
        """Names in the directory that neither this publisher (this run or an earlier one)
        wrote nor ``also_ours`` accepts, sorted: files a program may want to refuse to
        share its directory with. Those in ``segments/`` are named with that prefix; a
        ``segments`` that is not a safe directory is itself a stray."""
        owned = self._retention.generation_names()
        names = [
            name
            for name in os.listdir(self._directory)
            if not (name in owned or is_fixed_name(name) or is_temp_name(name) or also_ours(name))
        ]
        segments = segments_directory(self._directory)
        if segments is not None:
            ours = self._retention.segment_names()
            names += [
                f"{SEGMENTS_DIR}/{name}"
                for name in os.listdir(segments)
                if name not in ours and not is_segment_temp_name(name)
            ]
        elif os.path.lexists(self._directory / SEGMENTS_DIR):
            names.append(SEGMENTS_DIR)
        return sorted(names)

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

    def _protocol(self, generation: int) -> dict[str, str]:
        return {
            GENERATION_KEY: str(generation),
            PUBLISHED_AT_KEY: str(time.time_ns()),
            EPOCH_KEY: str(self._epoch),
        }

    def _commit(
        self, generation: int, write: Callable[[Commit], tuple[pa.Schema, pa.RecordBatch]]
    ) -> None:
        """Let ``write`` write the files of ``generation`` (returning the generation file's
        schema and batch), then switch to it. On failure, undo all of it: a refused table
        raises its ValueError, anything else :class:`PublishError`."""
        commit = Commit(self._directory, generation, self._hint, self._generation)
        try:
            schema, batch = write(commit)
            commit.switch(schema, batch)
        except RefusedTableError:
            commit.undo()
            raise
        except _RefusedMetadataError as exc:
            commit.undo()
            raise exc.error from None
        except Exception as exc:
            commit.undo()
            raise PublishError(
                getattr(exc, "errno", None) or 0,
                f"could not publish generation {generation} in {self._directory}: {exc}; "
                f"generation {self._generation} stays live",
            ) from exc
        except BaseException:
            commit.undo()
            raise
        self._generation = generation

    def _make_segments_dir(self) -> None:
        path = self._directory / SEGMENTS_DIR
        try:
            path.mkdir(mode=DIR_MODE)
            os.chmod(path, DIR_MODE)
        except FileExistsError:
            if segments_directory(self._directory) is None:
                raise UnsafePathError(
                    f"{path} is not a directory this publisher can use (a symlink, a file, "
                    "or writable by every user)"
                ) from None
        except OSError as exc:
            raise PublishError(
                exc.errno or 0,
                f"cannot create {path}: {exc}; generation {self._generation} stays live",
            ) from exc

    def _free_generation(self, segments: Sequence[int]) -> int:
        """The next number whose names no file holds: neither the generation file nor the
        files of the segments it writes (one written by someone else is left alone:
        replacing it would make a planted directory fail every publication)."""
        generation = self._generation + 1
        seg_dir = self._directory / SEGMENTS_DIR
        for _ in range(_NAME_ATTEMPTS):
            taken = (
                [generation_name(generation)]
                if os.path.lexists(self._directory / generation_name(generation))
                else []
            )
            taken += [
                f"{SEGMENTS_DIR}/{segment_name(generation, s)}"
                for s in segments
                if os.path.lexists(seg_dir / segment_name(generation, s))
            ]
            if not taken:
                return generation
            log.warning(
                "a file this publisher did not write holds the next generation's name; skipped",
                extra={"file": taken[0]},
            )
            generation += 1
        raise PublishError(
            errno.EEXIST,
            f"{_NAME_ATTEMPTS} generation names after {self._generation} are taken by files "
            f"this publisher did not write in {self._directory}",
        )


class _RefusedMetadataError(Exception):
    """Metadata from a caller's function broke a rule: ``error`` (its ValueError or
    TypeError) is raised once the generation's files are removed."""

    def __init__(self, error: TypeError | ValueError) -> None:
        super().__init__(str(error))
        self.error = error


def _mark(directory: Path) -> None:
    path = directory / MARKER_NAME
    if not os.path.lexists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | OPEN_FLAGS, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, b"shm publication directory (see the shm package)\n")
        finally:
            os.close(fd)


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
