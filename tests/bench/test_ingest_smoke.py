"""The ingest benchmark's pipeline part with keyed records: every key becomes a series."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.ingest import bench_pipeline, record_key
from shm import Reader


def test_keyed_pipeline_holds_one_series_per_key() -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        figures = bench_pipeline(3_000, Path(tmp), series=250)
        snap = Reader(Path(tmp) / "pipeline").current()
        assert snap is not None
        assert figures["series"] == 250 and figures["events"] == 3_000
        assert figures["events_per_s"] > 0 and figures["generations"] >= 1
        assert snap.metadata["series"] == "250" and snap.table.num_rows == 3_000
        ids = set(snap.table.column("series_id").to_pylist())
        assert ids == {record_key(i, 250).decode() for i in range(250)}  # type: ignore[union-attr]


def test_keyless_pipeline_is_one_default_series() -> None:
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        figures = bench_pipeline(3_000, Path(tmp))
        snap = Reader(Path(tmp) / "pipeline").current()
        assert snap is not None and figures["series"] == 1
        assert set(snap.table.column("series_id").to_pylist()) == {"default"}
