"""How many segments a window of many series should be published in."""

from __future__ import annotations

from shm._layout import MAX_SEGMENTS

__all__ = ["SERIES_PER_SEGMENT", "segments_for"]

SERIES_PER_SEGMENT = 64
"""Series per segment the default segment count aims at. A publication rewrites one segment
per changed series, and the first lookup into a rewritten segment file decodes its index:
both grow with the series per segment; the manifest (written per publication, compared per
reader), the files and a new worker's first mapping of them grow with the segment count.
Measured with ``python -m bench.series_scale --series-per-segment N`` at 1 M series: 64 makes
a publication 7x cheaper than 256 (2.2 against 15 ms) for a new worker's 0.6 s first open
instead of 0.2 s (docs/benchmarks.md)."""


def segments_for(series: int, series_per_segment: int = SERIES_PER_SEGMENT) -> int:
    """The segment count for ``series`` series: the smallest power of two that keeps them
    at most ``series_per_segment`` per segment on average (between 1 and the protocol's
    maximum). Powers of two, so that a window growing past a threshold re-segments
    rarely (each time the series double)."""
    if series_per_segment < 1:
        raise ValueError(f"series_per_segment must be at least 1, got {series_per_segment}")
    needed = -(-max(series, 1) // series_per_segment)
    return min(MAX_SEGMENTS, 1 << (needed - 1).bit_length())
