"""A generation file written in memory (small) or through a file object (large) is the same
Arrow IPC file: every column, the metadata, mode 0640; a failed write keeps no descriptor open."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import shm._commit as commit
from shm._layout import FILE_MODE


def _batch(rows: int) -> pa.RecordBatch:
    times = pa.array(np.arange(rows, dtype=np.int64), pa.timestamp("ns", tz="UTC"))
    values = pa.array(np.random.default_rng(rows).random(rows))
    ids = pa.array(["meter-ü"] * rows)
    return pa.RecordBatch.from_arrays([ids, times, values], names=["series_id", "time", "v"])


@pytest.mark.parametrize("rows", [0, 2_200, 1_000_000], ids=["empty", "small", "large"])
def test_the_file_holds_the_batch_and_its_metadata(tmp_path: Path, rows: int) -> None:
    batch = _batch(rows)
    # The large batch takes the file object's path: it is over the in-memory bound.
    assert (batch.nbytes > commit._IN_MEMORY_MAX) == (rows == 1_000_000)
    schema = batch.schema.with_metadata({"generation": "7"})
    path = tmp_path / "gen"
    umask = os.umask(0o077)
    try:
        commit.write_file(path, schema, batch)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
        assert reader.schema.metadata == {b"generation": b"7"}
        assert reader.get_batch(0).equals(batch)


def test_a_failed_write_raises_and_closes_its_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    before = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        commit.write_file(tmp_path / "gen", _batch(10).schema, _batch(10))
    assert len(os.listdir("/proc/self/fd")) == before
