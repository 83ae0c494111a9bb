"""How old the data of a generation is, from its publication time and the daemon's heartbeat."""

from __future__ import annotations

import time

from contract.status import DaemonStatus
from shm import Snapshot

__all__ = ["data_age_ms", "signed_age_ms"]

# "crashed" (written by make run's supervisor) keeps the dead daemon's last heartbeat: the
# data was current then, and ages from there.
_HEARTBEAT_STATES = frozenset({"live", "crashed"})


def signed_age_ms(
    snapshot: Snapshot, status: DaemonStatus | None, now_ns: int | None = None
) -> int:
    """Milliseconds since the data was last known current; negative for a generation
    published ahead of this host's clock.

    Current means the newer of the generation's publication time and, when the daemon
    reports ``live`` (or ``crashed``) for this very generation, its heartbeat: a live daemon
    with no new events is still current.
    """
    now = time.time_ns() if now_ns is None else now_ns
    base = snapshot.published_at_ns
    if (
        status is not None
        and status.state in _HEARTBEAT_STATES
        and status.generation == snapshot.generation
    ):
        base = max(base, status.heartbeat_ns or 0)
    return (now - base) // 1_000_000


def data_age_ms(snapshot: Snapshot, status: DaemonStatus | None, now_ns: int | None = None) -> int:
    """:func:`signed_age_ms`, with data from the future counting as age 0 (readiness is what
    refuses it)."""
    return max(0, signed_age_ms(snapshot, status, now_ns))
