"""A content checksum of a table, independent of chunking, slicing and memory location, and
of a table published in segments, kept current in O(changed segments)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from contract.series import SERIES_ID_COLUMN

__all__ = ["SegmentsChecksum", "segment_checksum", "table_checksum"]


def table_checksum(table: pa.Table) -> str:
    """Hex XXH3-128 digest of ``table``'s column names, types, validity and values.

    Two tables with equal contents give equal digests whether they are chunked, sliced, built in
    memory or mapped from a file, so a publisher can record it and a reader can recompute it to
    prove that what it served is exactly what was published. Fixed-width columns are hashed from
    their buffers without conversion; string and binary columns from their value lengths and
    bytes (two streams, so chunk boundaries do not matter); other types fall back to their
    Python values (slow, fine for small tables).

    XXH3 is not a cryptographic hash: the digest detects a torn, mixed or corrupted table,
    not a forger (nothing here defends against one who can write the shm directory). It is
    many times faster than a cryptographic hash (docs/shm-protocol.md), and the daemon
    computes it at every publication, on the path from an event to the readers.
    """
    digest = xxhash.xxh3_128()
    digest.update(str(table.num_rows).encode())
    for name, column in zip(table.column_names, table.columns, strict=True):
        digest.update(f"\x00{name}\x00{column.type}\x00".encode())
        digest.update(str(column.null_count).encode())
        if column.null_count:
            for chunk in column.chunks:
                digest.update(np.asarray(pc.is_null(chunk), dtype=np.bool_).tobytes())
        if _is_variable_binary(column.type):
            _hash_variable(digest, column.chunks)
            continue
        for chunk in column.chunks:
            _hash_values(digest, chunk)
    return digest.hexdigest()


def _is_variable_binary(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    )


def _hash_variable(digest: xxhash.xxh3_128, chunks: list[pa.Array[Any]]) -> None:
    """Lengths of the values (int64) and their bytes, each as one stream over the chunks."""
    lengths = xxhash.xxh3_128()
    data = xxhash.xxh3_128()
    for raw in chunks:
        chunk = raw
        if chunk.null_count:
            # The bytes a null slot spans are unspecified: hash it as the empty value.
            chunk = pc.fill_null(
                chunk, pa.scalar(b"" if _is_binary(chunk.type) else "", chunk.type)
            )
        if not len(chunk):
            continue
        offsets_buf, data_buf = chunk.buffers()[1], chunk.buffers()[2]
        if offsets_buf is None:
            continue
        wide = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
        width: type[np.int64] | type[np.int32] = np.int64 if wide else np.int32
        offsets = np.frombuffer(
            memoryview(offsets_buf),
            dtype=width,
            count=len(chunk) + 1,
            offset=chunk.offset * (8 if wide else 4),
        )
        lengths.update(np.diff(offsets).astype(np.int64).tobytes())
        if data_buf is not None:
            data.update(memoryview(data_buf)[int(offsets[0]) : int(offsets[-1])])
    digest.update(lengths.digest())
    digest.update(data.digest())


def _is_binary(kind: pa.DataType) -> bool:
    return bool(pa.types.is_binary(kind) or pa.types.is_large_binary(kind))


def _hash_values(digest: xxhash.xxh3_128, array: pa.Array[Any]) -> None:
    if pa.types.is_primitive(array.type) and not pa.types.is_boolean(array.type):
        if array.null_count:
            # Bytes under a null slot are unspecified: hash zeros there instead.
            array = pc.fill_null(array, pa.scalar(0, array.type))
        data = array.buffers()[1]
        if data is not None:
            width = array.type.bit_width // 8
            start = array.offset * width
            digest.update(memoryview(data)[start : start + len(array) * width])
        return
    for value in array.to_pylist():
        digest.update(repr(value).encode() + b"\x1f")


def segment_checksum(table: pa.Table) -> str:
    """Hex XXH3-128 digest of a multi-series table (a segment's: a ``series_id`` column in
    which each series is one contiguous run, and the other columns): its ``series_id``
    column run-length encoded (each run's id once, and where the run ends), then the other
    columns, each part as :func:`table_checksum` hashes it. Any change of content changes it,
    as with :func:`table_checksum`, but the ids cost once per series instead of once per row
    (about half the bytes hashed for a segment of 336-row series)."""
    column = table.column(SERIES_ID_COLUMN)
    ids = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    runs: Any = pc.call_function("run_end_encode", [ids])
    encoded = pa.table({"run_id": runs.values, "run_end": runs.run_ends.cast(pa.int64())})
    rest = table.drop_columns([SERIES_ID_COLUMN])
    digest = xxhash.xxh3_128()
    digest.update(table_checksum(encoded).encode())
    digest.update(table_checksum(rest).encode())
    return digest.hexdigest()


class SegmentsChecksum:
    """The checksum of a table published in ``segments`` segments, from each segment's
    :func:`segment_checksum`, so that a publisher that rewrites a few segments updates it
    in O(those segments).

    Its value (:meth:`hexdigest`) is the hex XXH3-128 of the segment count and of the XOR of
    one XXH3-128 per non-empty segment over its number and its checksum: equal contents
    split the same way give equal values whatever order the segments were set in, and a
    change of any segment's content, or of the segment count, changes it (up to the chance
    collisions of a 128-bit digest; the XOR makes it a check against corruption, not against
    a forger). ``Snapshot.data_checksum`` computes the same value from a segmented
    generation's files.
    """

    __slots__ = ("_checksums", "_combined", "segments")

    def __init__(self, segments: int) -> None:
        if segments < 1:
            raise ValueError(f"segments must be at least 1, got {segments}")
        self.segments = segments
        self._checksums: dict[int, str] = {}
        self._combined = 0

    def set(self, segment: int, checksum: str | None) -> None:
        """Record ``segment``'s :func:`segment_checksum` (None: the segment is empty)."""
        if not 0 <= segment < self.segments:
            raise ValueError(f"segment {segment} is not between 0 and {self.segments - 1}")
        old = self._checksums.pop(segment, None)
        if old is not None:
            self._combined ^= _term(segment, old)
        if checksum is not None:
            self._checksums[segment] = checksum
            self._combined ^= _term(segment, checksum)

    def copy(self) -> SegmentsChecksum:
        """An independent copy (to stage changes that may be abandoned)."""
        other = SegmentsChecksum(self.segments)
        other._checksums = dict(self._checksums)
        other._combined = self._combined
        return other

    def hexdigest(self) -> str:
        """The checksum of the whole table, O(1)."""
        text = f"segments\x00{self.segments}\x00{self._combined:032x}"
        return xxhash.xxh3_128_hexdigest(text.encode())


def _term(segment: int, checksum: str) -> int:
    return xxhash.xxh3_128_intdigest(f"{segment}\x00{checksum}".encode())
