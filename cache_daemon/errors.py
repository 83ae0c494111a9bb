"""Exceptions raised by the cache daemon. Every one derives from :class:`DaemonError`."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DaemonError",
    "DecodeError",
    "SnapshotError",
    "StoreError",
]


class DaemonError(Exception):
    """Base class of every error the daemon raises on purpose."""


class ConfigError(DaemonError, ValueError):
    """An environment variable is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


class DecodeError(DaemonError, ValueError):
    """A record cannot become an event.

    ``reason`` is a short, fixed label (used as the dead-letter header and as a counter key);
    ``detail`` is the human explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StoreError(DaemonError, OSError):
    """The object store failed or refused a request (network, credentials, missing object)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class ArtifactError(DaemonError, ValueError):
    """A model artifact failed verification (hash mismatch, missing or malformed checksum)."""


class SnapshotError(DaemonError, ValueError):
    """A bootstrap snapshot (S3 parquet or shm generation) does not fit the configured schema."""
