"""Publish a table to many processes through a memory-backed directory, zero-copy.

A single :class:`Publisher` (the cache daemon) writes each new version of a table as an Arrow IPC
file under an increasing generation number, tagged with the publisher run's :class:`Epoch`;
any number of :class:`Reader` objects (one per Gunicorn worker) map the generation the live
publisher announced and hand it out as a :class:`Snapshot`. A window of many series is
published in segments (:meth:`Publisher.publish_segments`): each generation rewrites only the
segments that changed, and a reader finds one series' rows in O(1). See ``shm/_layout.py`` for
the directory layout and the classes for their contracts.
"""

from shm._index import SeriesSummary
from shm._layouts import SeriesIds
from shm._meta import Epoch
from shm._segment import SegmentKey
from shm._sizing import SERIES_PER_SEGMENT, segments_for
from shm.adopt import check_adoptable
from shm.checksum import SegmentsChecksum, segment_checksum, table_checksum
from shm.errors import (
    CorruptGenerationError,
    ForeignDirectoryError,
    PublisherLockedError,
    PublishError,
    ShmError,
    UnsafePathError,
)
from shm.publisher import Publisher
from shm.reader import Reader
from shm.snapshot import Snapshot

__all__ = [
    "SERIES_PER_SEGMENT",
    "CorruptGenerationError",
    "Epoch",
    "ForeignDirectoryError",
    "PublishError",
    "Publisher",
    "PublisherLockedError",
    "Reader",
    "SegmentKey",
    "SegmentsChecksum",
    "SeriesIds",
    "SeriesSummary",
    "ShmError",
    "Snapshot",
    "UnsafePathError",
    "check_adoptable",
    "segment_checksum",
    "segments_for",
    "table_checksum",
]
