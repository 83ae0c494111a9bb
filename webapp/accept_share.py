"""How many connections each gevent worker of one Gunicorn server holds, shared by fork.

:class:`webapp.gevent_worker.GeventWorker` uses it to let the worker holding the fewest
connections accept the next one (see that module). The table lives in an anonymous shared
mapping that the Gunicorn master makes before its first fork, so every worker reads the same
memory without a system call.

Ownership: the master reserves one slot per worker while it constructs the worker object,
before the fork (:meth:`ConnectionTable.reserve`); a slot whose worker process is gone is
reserved again. Only that worker writes its slot afterwards: :meth:`ConnectionTable.join`
once it accepts, :meth:`ConnectionTable.count` as connections open and close,
:meth:`ConnectionTable.leave` when it stops accepting. An unjoined slot reads :data:`EMPTY`
and takes no part. Readers may see a count that is a few connections old, or a dead worker's
last count until its slot is reserved again; the rule built on it (:meth:`holds_more`) only
decides who accepts first, never whether a connection is accepted.
"""

from __future__ import annotations

import mmap

from contract._process import pid_exists

__all__ = ["EMPTY", "ConnectionTable"]

EMPTY = -1
_SLOT_BYTES = 8


class ConnectionTable:
    """``slots`` signed 64-bit counts in shared memory (see the module docstring)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        # mmap(-1, ...) is MAP_SHARED | MAP_ANONYMOUS: forked children share the pages.
        self._map = mmap.mmap(-1, slots * _SLOT_BYTES)
        self._counts = memoryview(self._map).cast("q")
        self._holders: dict[int, object] = {}
        for slot in range(slots):
            self._counts[slot] = EMPTY

    def __len__(self) -> int:
        return len(self._counts)

    def reserve(self, holder: object) -> int | None:
        """In the master: a slot for ``holder`` (a worker object, whose ``pid`` the master
        sets after the fork), emptied; None when every slot's worker is alive."""
        for slot in range(len(self._counts)):
            previous = self._holders.get(slot)
            if previous is None or not pid_exists(getattr(previous, "pid", None)):
                self._holders[slot] = holder
                self._counts[slot] = EMPTY
                return slot
        return None

    def join(self, slot: int) -> None:
        """In the worker: it accepts connections from now on, holding none yet."""
        self._counts[slot] = 0

    def count(self, slot: int, connections: int) -> None:
        """In the worker: it now holds ``connections``."""
        self._counts[slot] = connections

    def leave(self, slot: int) -> None:
        """In the worker: it accepts no more connections."""
        self._counts[slot] = EMPTY

    def holds_more(self, slot: int) -> bool:
        """Whether some other joined worker holds fewer connections than ``slot``'s."""
        mine = self._counts[slot]
        return any(0 <= held < mine for held in self.others(slot))

    def others(self, slot: int) -> tuple[int, ...]:
        """Every other slot's count, in slot order."""
        return tuple(held for other, held in enumerate(self._counts) if other != slot)

    def counts(self) -> list[int]:
        """Every slot's count (:data:`EMPTY` for a slot that takes no part)."""
        return list(self._counts)
