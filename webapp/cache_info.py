"""The body of ``GET /cache``: what this worker serves (its fields are the OpenAPI schema's)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import numpy as np

from webapp.snapshot_view import SnapshotView

__all__ = ["CacheInfo", "cache_fields"]


@dataclass(frozen=True, slots=True)
class CacheInfo:
    """One generation as one worker sees it. Metadata a publisher left out reads as null;
    ``checksum_matches`` compares the checksum this worker computed from the table with the
    one the metadata states (null without one, and for a segmented generation, whose
    checksum the worker reports from the metadata without reading every row);
    ``series`` is the number of series in the window (``GET /series`` lists them)."""

    generation: int
    pid: int
    rows: int
    series: int
    time_min: str | None
    time_max: str | None
    offsets: dict[str, int] | None
    source: str | None
    state: str | None
    topic: str | None
    model_version: str | None
    model_sha256: str | None
    published_at: str
    data_age_ms: int
    checksum: str
    checksum_matches: bool | None

    @classmethod
    def of(cls, view: SnapshotView, data_age_ms: int) -> CacheInfo:
        meta, summary = view.meta, view.summary()
        published = np.datetime_as_string(
            np.datetime64(view.snapshot.published_at_ns, "ns"), unit="ms"
        )
        offsets = meta.offsets
        return cls(
            generation=view.generation,
            pid=os.getpid(),
            rows=summary.rows,
            series=view.catalog().count,
            time_min=summary.time_min,
            time_max=summary.time_max,
            offsets=None if offsets is None else {str(p): o for p, o in sorted(offsets.items())},
            source=meta.source or None,
            state=meta.state or None,
            topic=meta.topic or None,
            model_version=meta.model_version or None,
            model_sha256=meta.model_sha256 or None,
            published_at=f"{published}Z",
            data_age_ms=data_age_ms,
            checksum=summary.checksum,
            checksum_matches=(
                meta.window_checksum == summary.checksum
                if meta.window_checksum and summary.checksum_verified
                else None
            ),
        )

    def as_dict(self) -> dict[str, object]:
        """The body as a dict, field order kept. Shallow: every value is immutable but
        ``offsets``, a dict made for this object (``dataclasses.asdict`` deep-copies: 34 µs
        per answer against 3 µs)."""
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(f.name for f in fields(CacheInfo))


def cache_fields() -> tuple[str, ...]:
    """The names of the body's fields, in order."""
    return _FIELDS
