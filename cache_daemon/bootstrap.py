"""Where the first window comes from: the last generation in the shm directory, or a snapshot.

Order (first that fits wins): the newest generation already in the shm directory, when it was
published for the same source and topic (a restarted daemon: its ``offsets`` and ``counters``
are exact); else the S3 snapshot (``SNAPSHOT_BUCKET``/``SNAPSHOT_KEY``); else nothing (the
source positions itself by time).

Snapshot format (what :func:`snapshot_parquet` writes): a parquet file with ``time`` and the
value columns, and for many series a ``series_id`` text column (without it every row belongs
to the default series); optional schema metadata ``offsets`` (JSON
``{"<partition>": next offset}``) and ``topic``. Without offsets the source seeks by time. A
plain series (like the bundled sample, naive timestamps taken as UTC) is a valid snapshot.
The columns are checked when the snapshot is loaded
(:meth:`cache_daemon.series_windows.SeriesWindows.load`).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cache_daemon.errors import SnapshotError
from cache_daemon.publication import ModelInfo
from contract.metadata import Counters, GenerationMeta, format_offsets, parse_offsets

__all__ = ["Bootstrap", "from_generation", "read_snapshot", "snapshot_parquet"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Bootstrap:
    """The initial state. ``publish``: the table is not visible yet and must be published at
    once (a snapshot), as opposed to a generation that readers already see."""

    table: pa.Table
    origin: str
    offsets: dict[int, int] | None = None
    counters: Counters = field(default_factory=Counters)
    model: ModelInfo | None = None
    publish: bool = True


def from_generation(
    table: pa.Table,
    metadata: Mapping[str, str],
    *,
    source: str,
    topic: str,
    directory: Path,
) -> Bootstrap | None:
    """A bootstrap from the newest published generation, or None when it does not fit."""
    meta = GenerationMeta.from_metadata(metadata)
    kinds = ("kafka", "snapshot") if source == "kafka" else ("replay",)
    if meta.source not in kinds:
        log.info(
            "last generation is from another source; not resuming from it",
            extra={"found": meta.source, "wanted": source},
        )
        return None
    if source == "kafka" and meta.topic != topic:
        log.warning(
            "last generation is from another topic; not resuming from it",
            extra={"found": meta.topic, "wanted": topic},
        )
        return None
    if meta.offsets is None:
        log.warning("last generation has no readable offsets; not resuming from it")
        return None
    model = None
    if meta.model_file and (directory / meta.model_file).is_file():
        model = ModelInfo(
            version=meta.model_version, sha256=meta.model_sha256, file=meta.model_file
        )
    return Bootstrap(
        table=table,
        origin="shm",
        offsets=meta.offsets,
        counters=meta.counters,
        model=model,
        publish=False,
    )


def read_snapshot(data: bytes, *, topic: str, where: str) -> Bootstrap:
    """Parse snapshot parquet bytes; offsets are used only when recorded for ``topic``."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (OSError, pa.ArrowException) as exc:
        raise SnapshotError(f"{where} is not a readable parquet file: {exc}") from None
    meta = table.schema.metadata or {}
    offsets = parse_offsets(meta.get(b"offsets"))
    recorded_topic = meta.get(b"topic", b"").decode("utf-8", errors="replace")
    if offsets is not None and recorded_topic and recorded_topic != topic:
        log.warning(
            "snapshot offsets belong to another topic; seeking by time instead",
            extra={"snapshot_topic": recorded_topic, "topic": topic},
        )
        offsets = None
    return Bootstrap(table=table.replace_schema_metadata(None), origin="snapshot", offsets=offsets)


def snapshot_parquet(table: pa.Table, *, offsets: Mapping[int, int] | None, topic: str) -> bytes:
    """Serialise a window as a snapshot that :func:`read_snapshot` understands."""
    meta = {b"topic": topic.encode()}
    if offsets is not None:
        meta[b"offsets"] = format_offsets(offsets).encode()
    sink = io.BytesIO()
    pq.write_table(table.replace_schema_metadata(meta), sink)
    return sink.getvalue()
