"""The reading side of the protocol: what a Gunicorn worker calls on every request."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from contract.series import DEFAULT_SERIES_ID
from shm._generation import SchemaCheck, open_generation
from shm._hint import Announcement, Hint, identity_of
from shm._layout import check_directory, generation_name, list_generations
from shm.errors import ShmError, UnsafePathError
from shm.snapshot import Snapshot

__all__ = ["Reader"]

log = logging.getLogger(__name__)

# Below any generation: "no settled hint value", so the next call looks again.
_UNSETTLED = -1


class Reader:
    """Gives the generation the live publisher announced as a :class:`Snapshot`.

    Cost: when nothing changed, :meth:`current` reads an 8-byte counter from a mapped hint file
    and returns the cached snapshot (no system call, no copy); every ``recheck_s`` it also
    ``stat``\\ s the hint, to notice a directory that was wiped and given to a new publisher.
    On a new announcement it lists the directory, maps the announced file read-only and opens
    it zero-copy, once per process. For a manifest it also maps the segment files that differ
    from those of the snapshot it held (all of them the first time): O(changed segments)
    system calls and an O(segments) comparison of two int64 columns; segments carried over
    keep their mapping, their index and whatever was memoized on them.

    Which generation (the monotonic rule):
      * The hint names the epoch of the publisher holding the lock and its newest generation.
        The reader serves that generation; if its file is refused it serves the newest valid
        one of the same epoch, never one it did not announce (a higher number, another epoch).
      * Within an epoch it never returns a lower generation than it returned before. A new
        epoch (a restarted publisher, on the same or a wiped directory) is followed at once,
        whatever its numbers.
      * Until the live publisher announces its first generation, a reader keeps what it holds;
        a new reader takes the newest valid generation of earlier epochs (ordered by epoch
        start, then generation).

    Refusals: a generation file that is not a trusted regular file (symlink, socket, FIFO,
    world-writable, untrusted owner), not valid Arrow IPC, without valid protocol metadata, or
    refused by ``check_schema`` is skipped, logged once and listed in :attr:`skipped`, as are
    generation files nobody announced. Only the directory itself being refused raises
    (:class:`~shm.errors.UnsafePathError`); the previously returned snapshot is unaffected.

    Safety:
      * Fork: the reader remembers its pid; in a forked child the first call drops everything the
        parent mapped and reopens, so a Gunicorn master's reader is never used by a worker.
      * Threads: any number of threads may call :meth:`current`; refreshing is serialised.
      * Trust: ``trusted_uids`` defaults to the directory's owner and this process's user.

    ``default_series_id`` names the one series of a generation whose table has no
    ``series_id`` column (see :meth:`Snapshot.series_table`).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        trusted_uids: Iterable[int] | None = None,
        check_schema: SchemaCheck | None = None,
        recheck_s: float = 0.25,
        default_series_id: str = DEFAULT_SERIES_ID,
    ) -> None:
        self._directory = Path(directory)
        self._default_series_id = default_series_id
        self._explicit_uids = frozenset(trusted_uids) if trusted_uids is not None else None
        self._check_schema = check_schema
        self._recheck_ns = int(recheck_s * 1e9)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._hint: Hint | None = None
        # (hint value this state answers, snapshot): one attribute, so one read is consistent.
        self._state: tuple[int, Snapshot | None] = (_UNSETTLED, None)
        self._recheck_at = 0
        self._skipped: tuple[str, ...] = ()
        self._logged: frozenset[str] = frozenset()

    @property
    def directory(self) -> Path:
        """The directory this reader follows."""
        return self._directory

    @property
    def skipped(self) -> tuple[str, ...]:
        """Generation files the last look at the directory passed over, each with the reason
        (empty when the served generation is the newest file present)."""
        return self._skipped

    def current(self) -> Snapshot | None:
        """The live publisher's generation, or None while there is none to serve.

        Raises :class:`~shm.errors.UnsafePathError` when the directory is refused (a symlink,
        world-writable, unreadable); the previously returned snapshot is unaffected.
        """
        if self._pid != os.getpid():
            self._after_fork()
        seen, snapshot = self._state
        hint = self._hint
        if hint is not None and hint.read() == seen and time.monotonic_ns() < self._recheck_at:
            return snapshot
        return self._refresh()

    def recheck(self) -> None:
        """Make the next :meth:`current` check which directory the path names (a caller that
        learnt the directory was removed or replaced), instead of up to ``recheck_s`` later."""
        self._recheck_at = 0

    def _after_fork(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            # Drop, do not close: the parent may still be using these objects.
            self._hint = None
            self._state = (_UNSETTLED, None)
            self._lock = threading.Lock()
            self._pid = os.getpid()

    def _refresh(self) -> Snapshot | None:
        with self._lock:
            seen, held = self._state
            try:
                dir_stat = check_directory(self._directory)
            except FileNotFoundError:
                self._hint = None
                return held
            except UnsafePathError:
                raise
            except OSError as exc:
                raise UnsafePathError(f"{self._directory} cannot be read: {exc}") from None
            now = time.monotonic_ns()
            hint = self._hint
            if hint is not None and now >= self._recheck_at:
                self._recheck_at = now + self._recheck_ns
                if identity_of(self._directory) != hint.identity:
                    # Replaced (a wiped directory, a new publisher): never close a mapping
                    # another thread may be reading; it goes when the last reference does.
                    hint = self._hint = None
                elif hint.read() == seen:
                    return held
            trusted = self._explicit_uids or frozenset({dir_stat.st_uid, os.geteuid()})
            skipped: list[str] = []
            if hint is None:
                try:
                    hint = self._hint = Hint.open_readonly(self._directory, trusted)
                except UnsafePathError as exc:
                    skipped.append(str(exc))
                self._recheck_at = now + self._recheck_ns
            value = hint.read() if hint is not None else _UNSETTLED
            announced = hint.announcement() if hint is not None else None
            try:
                snapshot, settled = self._choose(announced, held, trusted, skipped)
            except OSError as exc:
                raise UnsafePathError(f"{self._directory} cannot be read: {exc}") from None
            self._state = (value if settled and hint is not None else _UNSETTLED, snapshot)
            self._report(skipped)
            return snapshot

    def _choose(
        self,
        announced: Announcement | None,
        held: Snapshot | None,
        trusted: frozenset[int],
        skipped: list[str],
    ) -> tuple[Snapshot | None, bool]:
        """The snapshot to serve and whether the hint's value is settled (no need to look
        again until it changes)."""
        names = list_generations(self._directory)
        if announced is None or not announced.published:
            if held is not None:
                return held, True
            return self._newest_earlier(names, announced, trusted, skipped), True
        epoch, newest = announced.epoch, announced.generation
        skipped.extend(
            f"{generation_name(n)}: above the newest generation the publisher announced"
            for n in names
            if n > newest
        )
        if held is not None and held.epoch == epoch and held.generation >= newest:
            return held, True
        settled = True
        for n in reversed(names):
            if n > newest:
                continue
            if n < announced.first or (
                held is not None and held.epoch == epoch and n <= held.generation
            ):
                break
            try:
                snapshot = self._open(n, trusted, held)
            except FileNotFoundError:
                # The announced file not there yet: the publisher announces just before its
                # rename. Look again on the next call.
                settled = settled and n != newest
                continue
            except ShmError as exc:
                skipped.append(str(exc))
                continue
            if snapshot.epoch != epoch:
                skipped.append(
                    f"{generation_name(n)}: written by epoch {snapshot.epoch}, "
                    f"the publisher's is {epoch}"
                )
                continue
            return snapshot, settled and newest in names
        return held, settled and newest in names

    def _newest_earlier(
        self,
        names: list[int],
        announced: Announcement | None,
        trusted: frozenset[int],
        skipped: list[str],
    ) -> Snapshot | None:
        """The newest valid generation of an earlier epoch, for a reader holding nothing while
        the live publisher has announced nothing (or there is no hint)."""
        best: Snapshot | None = None
        for n in reversed(names):
            if announced is not None and announced.epoch is not None and n >= announced.first:
                skipped.append(
                    f"{generation_name(n)}: not announced by the publisher (it announced none)"
                )
                continue
            try:
                snapshot = self._open(n, trusted)
            except FileNotFoundError:
                continue
            except ShmError as exc:
                skipped.append(str(exc))
                continue
            if announced is not None and announced.epoch is not None:
                too_new = snapshot.epoch >= announced.epoch
            else:
                too_new = snapshot.epoch.start_ns > time.time_ns()
            if too_new:
                skipped.append(
                    f"{generation_name(n)}: epoch {snapshot.epoch} is not an earlier run"
                )
            elif best is None or (snapshot.epoch, n) > (best.epoch, best.generation):
                best = snapshot
        return best

    def _open(
        self, generation: int, trusted: frozenset[int], held: Snapshot | None = None
    ) -> Snapshot:
        snapshot = open_generation(
            self._directory,
            generation,
            trusted,
            self._check_schema,
            previous=held,
            default_series_id=self._default_series_id,
        )
        log.debug("opened generation", extra={"generation": generation})
        return snapshot

    def _report(self, skipped: list[str]) -> None:
        self._skipped = tuple(skipped)
        fresh = set(skipped) - self._logged
        for reason in sorted(fresh):
            log.warning("skipped a file in the shm directory", extra={"reason": reason})
        self._logged = frozenset(skipped)
