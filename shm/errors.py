"""Exceptions raised by the shm publication protocol.

Every exception derives from :class:`ShmError` and from the closest builtin, so callers can catch
either the package's base class or the usual ``OSError`` family.
"""

from __future__ import annotations

__all__ = [
    "CorruptGenerationError",
    "ForeignDirectoryError",
    "PublishError",
    "PublisherLockedError",
    "ShmError",
    "UnsafePathError",
]


class ShmError(Exception):
    """Base class of every error raised by :mod:`shm`."""


class PublishError(ShmError, OSError):
    """A generation could not be written; the previous generation is still the live one."""


class PublisherLockedError(ShmError, BlockingIOError):
    """Another live :class:`~shm.Publisher` holds the directory's lock."""


class UnsafePathError(ShmError, PermissionError):
    """A path is a symlink, not a regular file or directory, writable by others, or owned by a
    user the reader does not trust."""


class CorruptGenerationError(ShmError, ValueError):
    """A generation file exists but is not a readable Arrow IPC file."""


class ForeignDirectoryError(ShmError, PermissionError):
    """A directory a publisher must not adopt: ``/``, ``/dev/shm`` itself, or one holding
    files that no publisher wrote."""
