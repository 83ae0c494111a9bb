"""Exceptions raised by the cache daemon.

The daemon's own derive from :class:`DaemonError`; :class:`ConfigError` (a variable that
cannot be used) is the contract's and :class:`StoreError` (the object store failed) the
object store client's, re-exported here.
"""

from __future__ import annotations

from contract.errors import ConfigError
from objectstore.errors import StoreError

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DaemonError",
    "DecodeError",
    "SnapshotError",
    "StoreError",
]


class DaemonError(Exception):
    """Base class of the daemon's own errors."""


class DecodeError(DaemonError, ValueError):
    """A record cannot become an event.

    ``reason`` is a short, fixed label (used as the dead-letter header and as a counter key);
    ``detail`` is the human explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class ArtifactError(DaemonError, ValueError):
    """A model artifact failed verification (hash mismatch, missing or malformed checksum)."""


class SnapshotError(DaemonError, ValueError):
    """A bootstrap snapshot (S3 parquet or shm generation) does not fit the configured schema."""
