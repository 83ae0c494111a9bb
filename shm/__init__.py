"""Publish a table to many processes through a memory-backed directory, zero-copy.

A single :class:`Publisher` (the cache daemon) writes each new version of a table as an Arrow IPC
file under an increasing generation number; any number of :class:`Reader` objects (one per
Gunicorn worker) map the newest generation and hand it out as a :class:`Snapshot`. See
``shm/_layout.py`` for the directory layout and the classes for their contracts.
"""

from shm.checksum import table_checksum
from shm.errors import (
    CorruptGenerationError,
    PublisherLockedError,
    PublishError,
    ShmError,
    UnsafePathError,
)
from shm.publisher import Publisher
from shm.reader import Reader
from shm.snapshot import Snapshot

__all__ = [
    "CorruptGenerationError",
    "PublishError",
    "Publisher",
    "PublisherLockedError",
    "Reader",
    "ShmError",
    "Snapshot",
    "UnsafePathError",
    "table_checksum",
]
