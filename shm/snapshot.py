"""An immutable view of one published generation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pandas as pd
import pyarrow as pa

from shm._meta import Epoch

__all__ = ["Snapshot"]

T = TypeVar("T")

_FRAME_KEY = "shm.frame"


class Snapshot:
    """One generation as a zero-copy Arrow table over a read-only memory mapping.

    The table's buffers point into the mapped file; the mapping stays valid for as long as this
    object (or anything derived from its buffers) is referenced, even after the publisher unlinks
    the file. Instances are shared by every thread of a process and must be treated as read-only.

    Attributes:
        generation: the publisher's counter for this table; strictly increasing within an
            epoch.
        table: the published table, one record batch, zero-copy.
        metadata: the publisher's ``metadata`` argument, verbatim.
        published_at_ns: ``time.time_ns()`` of the publisher when it wrote the file.
        epoch: the run of the publisher that wrote it (see :class:`shm.Epoch`).
    """

    __slots__ = (
        "_derived",
        "_lock",
        "epoch",
        "generation",
        "metadata",
        "published_at_ns",
        "table",
    )

    def __init__(
        self,
        *,
        generation: int,
        table: pa.Table,
        metadata: dict[str, str],
        published_at_ns: int,
        epoch: Epoch,
    ) -> None:
        self.generation = generation
        self.epoch = epoch
        self.table = table
        self.metadata = metadata
        self.published_at_ns = published_at_ns
        self._derived: dict[str, Any] = {}
        self._lock = threading.Lock()

    def derive(self, key: str, fn: Callable[[Snapshot], T]) -> T:
        """Return ``fn(self)``, computed at most once per snapshot and process under ``key``.

        Use it for anything a request needs that depends only on the generation (a DataFrame,
        features, a checksum): the first request after a new generation pays for it, the others
        get the cached value. Thread-safe: concurrent first callers wait for one computation.
        """
        try:
            return cast(T, self._derived[key])
        except KeyError:
            pass
        with self._lock:
            if key not in self._derived:
                self._derived[key] = fn(self)
            return cast(T, self._derived[key])

    def frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame, converted once per snapshot.

        Converted with ``split_blocks=True`` so that numeric columns without nulls are numpy views
        of the mapping (no copy); those arrays are read-only, so accidental mutation raises.
        """
        return self.derive(_FRAME_KEY, _to_frame)

    def __repr__(self) -> str:
        return f"Snapshot(generation={self.generation}, rows={self.table.num_rows})"


def _to_frame(snapshot: Snapshot) -> pd.DataFrame:
    return snapshot.table.to_pandas(split_blocks=True, self_destruct=False)
