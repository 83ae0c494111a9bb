"""A content checksum of a table, independent of chunking, slicing and memory location."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["table_checksum"]


def table_checksum(table: pa.Table) -> str:
    """Hex BLAKE2b-128 digest of ``table``'s column names, types, validity and values.

    Two tables with equal contents give equal digests whether they are chunked, sliced, built in
    memory or mapped from a file, so a publisher can record it and a reader can recompute it to
    prove that what it served is exactly what was published. Fixed-width columns are hashed from
    their buffers without conversion; string and binary columns from their value lengths and
    bytes (two streams, so chunk boundaries do not matter); other types fall back to their
    Python values (slow, fine for small tables).
    """
    digest = hashlib.blake2b(digest_size=16)
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


def _hash_variable(digest: hashlib.blake2b, chunks: list[pa.Array[Any]]) -> None:
    """Lengths of the values (int64) and their bytes, each as one stream over the chunks."""
    lengths = hashlib.blake2b(digest_size=16)
    data = hashlib.blake2b(digest_size=16)
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


def _hash_values(digest: hashlib.blake2b, array: pa.Array[Any]) -> None:
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
