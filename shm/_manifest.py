"""The manifest of a segmented generation and the metadata of its segment files.

A manifest is a generation file (``gen-<N>.arrow``) whose schema metadata holds, besides the
protocol's keys (generation, publication time, epoch) and the caller's metadata:

``shm.segments``
    the number of segments ``S`` (its presence is what makes the file a manifest);
``shm.schema``
    the data schema every segment shares, ``series_id`` included (base64 of the Arrow IPC
    serialisation): what readers check and what ``Snapshot.table`` has;
``shm.series_set``
    the generation at which the set of series ids last changed: readers keep their sorted
    listing of ids for as long as it stays the same.

Its one record batch has ``S`` rows, one per segment, of three int64 columns: ``written``, the
generation that wrote the segment's file (``segments/seg-<written>-<segment>.arrow``; 0 for
an empty segment, which has no file), and the segment's ``series`` and ``rows`` counts.

A segment file holds the segment's rows without the ``series_id`` column (each series is a
contiguous run, so the id is stored once per series, in the index), as one record batch; its
metadata records ``shm.epoch`` and ``shm.generation`` (the writer), ``shm.segment``,
``shm.segments`` and ``shm.index``, the series index (see ``_index``). A reader checks every
one of these against the manifest that names the file.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from contract.series import SERIES_ID_COLUMN
from shm._layout import MAX_SEGMENTS
from shm._meta import SCHEMA_KEY, SEGMENTS_KEY, SERIES_SET_KEY, parse_count

__all__ = [
    "Manifest",
    "data_schema_of_segment",
    "decode_schema",
    "encode_schema",
    "manifest_batch",
    "parse_manifest",
]

Int64s = npt.NDArray[np.int64]

_COLUMNS = ("written", "series", "rows")
_SCHEMA = pa.schema([(name, pa.int64()) for name in _COLUMNS])


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a manifest says. Arrays are read-only, indexed by segment."""

    segments: int
    written: Int64s
    series: Int64s
    rows: Int64s
    data_schema: pa.Schema
    segment_schema: pa.Schema
    series_set: int


def encode_schema(schema: pa.Schema) -> str:
    """``schema`` as metadata text (base64 of its Arrow IPC serialisation)."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


@functools.lru_cache(maxsize=16)
def decode_schema(text: str) -> pa.Schema:
    """Inverse of :func:`encode_schema`; ValueError for anything else. Memoized: every
    manifest of a run carries the same text, and the same object lets readers compare
    schemas by identity."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        return pa.ipc.read_schema(pa.py_buffer(raw))
    except (binascii.Error, UnicodeEncodeError, pa.ArrowException) as exc:
        raise ValueError(f"{SCHEMA_KEY} is not a serialised schema: {exc}") from None


@functools.lru_cache(maxsize=16)
def data_schema_of_segment(data_schema: pa.Schema) -> pa.Schema:
    """The schema of a segment file's batch: ``data_schema`` without ``series_id``."""
    return data_schema.remove(data_schema.get_field_index(SERIES_ID_COLUMN))


def manifest_batch(written: Int64s, series: Int64s, rows: Int64s) -> pa.RecordBatch:
    """The manifest's record batch."""
    return pa.RecordBatch.from_arrays(
        # pa.array of an int64 ndarray without a type is zero-copy; with one, it converts
        # element by element (0.7 ms at 16,384 segments).
        [pa.array(written), pa.array(series), pa.array(rows)],
        schema=_SCHEMA,
    )


def parse_manifest(table: pa.Table, metadata: dict[str, str], generation: int) -> Manifest:
    """The manifest of generation ``generation`` from its table and its metadata (whose
    manifest keys are removed from ``metadata``). ValueError names what is wrong."""
    segments = parse_count(metadata.pop(SEGMENTS_KEY, ""), SEGMENTS_KEY)
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"{SEGMENTS_KEY} {segments} is not between 1 and {MAX_SEGMENTS}")
    data_schema = decode_schema(metadata.pop(SCHEMA_KEY, ""))
    series_set = parse_count(metadata.pop(SERIES_SET_KEY, ""), SERIES_SET_KEY)
    if series_set > generation:
        raise ValueError(f"{SERIES_SET_KEY} {series_set} is after the generation")
    if data_schema.get_field_index(SERIES_ID_COLUMN) < 0:
        raise ValueError(f"the data schema has no {SERIES_ID_COLUMN!r} column")
    if not table.schema.equals(_SCHEMA):
        raise ValueError(f"manifest columns are {table.schema}, expected {_SCHEMA}")
    if table.num_rows != segments or any(column.null_count for column in table.columns):
        raise ValueError(f"manifest has {table.num_rows} rows (or nulls) for {segments} segments")
    written, series, rows = (_column(table, name) for name in _COLUMNS)
    if np.any((written < 0) | (written > generation)):
        raise ValueError("manifest names a segment written after its generation")
    if np.any((series < 0) | (rows < series) | ((written == 0) != (series == 0))):
        raise ValueError("manifest counts do not match its segments")
    segment_schema = data_schema_of_segment(data_schema)
    return Manifest(segments, written, series, rows, data_schema, segment_schema, series_set)


def _column(table: pa.Table, name: str) -> Int64s:
    column = table.column(name)
    if column.num_chunks == 1:
        values: Int64s = column.chunk(0).to_numpy()
    else:
        values = column.to_numpy()
        values.flags.writeable = False
    return values
