"""Which files a publisher owns, and when it deletes them.

Generations: at most ``keep`` owned generation files stay, the oldest go first (as they were
published, earlier runs' before this run's).

Segment files: one is deleted when the last kept generation naming it goes. Within one
publisher run a segment's ``written`` generation only grows from manifest to manifest, so when
generation ``P`` goes, the files it names that a later kept manifest still names are exactly
those whose ``written`` equals that of the next kept manifest of the same run and segment
count; every other file of ``P`` is unreferenced. A vectorised comparison of two ``written``
columns, whatever the number of segments. Files of another run never share a name with this
run's (the publisher skips generation numbers whose names are taken), and only files this
publisher wrote or adopted from earlier runs of it are ever deleted.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shm._layout import SEGMENTS_DIR, generation_name, segment_name
from shm._meta import Epoch

__all__ = ["Retention"]

Int64s = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class _Kept:
    generation: int
    epoch: Epoch
    written: Int64s | None  # a manifest's; None for an inline generation


class Retention:
    """The owned generation and segment files of one publisher, oldest first."""

    def __init__(self, directory: Path, keep: int) -> None:
        self._directory = directory
        self._keep = keep
        self._kept: list[_Kept] = []
        self._segments: set[str] = set()

    def add(
        self,
        generation: int,
        epoch: Epoch,
        written: Int64s | None,
        segment_files: list[str] | tuple[str, ...] = (),
    ) -> None:
        """Own ``generation`` (newest so far) and the segment files it wrote."""
        self._kept.append(_Kept(generation, epoch, written))
        self._segments.update(segment_files)

    def adopt_segment(self, name: str) -> None:
        """Own a segment file an earlier run of this publisher wrote."""
        self._segments.add(name)

    def referenced(self) -> set[str]:
        """Names of the segment files the kept manifests name."""
        names: set[str] = set()
        for kept in self._kept:
            if kept.written is not None:
                names.update(
                    segment_name(int(kept.written[i]), int(i)) for i in np.flatnonzero(kept.written)
                )
        return names

    def generation_names(self) -> set[str]:
        """Names of the owned generation files."""
        return {generation_name(kept.generation) for kept in self._kept}

    def segment_names(self) -> set[str]:
        """Names of the owned segment files."""
        return set(self._segments)

    def prune(self) -> None:
        """Delete the oldest generations beyond ``keep`` and the segment files no kept
        generation names any more."""
        while len(self._kept) > self._keep:
            gone = self._kept.pop(0)
            with contextlib.suppress(FileNotFoundError):
                (self._directory / generation_name(gone.generation)).unlink()
            if gone.written is not None:
                self._forget(gone.written, self._successor(gone))

    def forget_segments(self, names: list[str]) -> None:
        """Delete owned segment files no generation names (a failed publication's)."""
        for name in names:
            self._unlink(name)

    def _successor(self, gone: _Kept) -> Int64s | None:
        for kept in self._kept:
            if kept.epoch == gone.epoch and kept.written is not None:
                assert gone.written is not None
                return kept.written if len(kept.written) == len(gone.written) else None
        return None

    def _forget(self, written: Int64s, successor: Int64s | None) -> None:
        unreferenced = written != 0
        if successor is not None:
            unreferenced &= written != successor
        for i in np.flatnonzero(unreferenced):
            self._unlink(segment_name(int(written[i]), int(i)))

    def _unlink(self, name: str) -> None:
        if name in self._segments:
            self._segments.discard(name)
            with contextlib.suppress(FileNotFoundError):
                (self._directory / SEGMENTS_DIR / name).unlink()
