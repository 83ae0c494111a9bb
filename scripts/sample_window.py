"""Publish the sample series as a window into an shm directory, without the daemon.

For tests, benchmarks and trying the web side alone::

    python -m scripts.sample_window --shm-dir /dev/shm/shm-forecast --model .run/model.skops

It installs the model artifact (:mod:`contract.model_files`) and publishes one generation
with the metadata the daemon would write (:class:`contract.metadata.GenerationMeta`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from contract import defaults
from contract.metadata import MODEL_KEYS, GenerationMeta, iso_utc, schema_fingerprint
from contract.model_files import install_model_file
from forecasting import load_bytes
from shm import Publisher, table_checksum

__all__ = ["SAMPLE", "install_model", "sample_table", "window_metadata"]

SAMPLE = defaults.SAMPLE_PATH


def sample_table(rows: int | None = None, *, end: int | None = None) -> pa.Table:
    """The sample series as a window table (``time`` UTC ns + the series column).

    ``end`` (exclusive row index) and ``rows`` pick a slice: the last ``rows`` rows before
    ``end``.
    """
    column = defaults.SERIES_COLUMN
    frame = pd.read_parquet(SAMPLE)
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize("UTC")
    stop = len(frame) if end is None else end
    start = 0 if rows is None else max(0, stop - rows)
    part = frame.iloc[start:stop].reset_index(drop=True)
    return pa.table(
        {
            "time": pa.array(part["time"], type=pa.timestamp("ns", tz="UTC")),
            column: pa.array(part[column], type=pa.float64()),
        }
    )


def install_model(shm_dir: Path, artifact: bytes) -> dict[str, str]:
    """Install a verified artifact into ``shm_dir``; returns its metadata entries (the
    :data:`~contract.metadata.MODEL_KEYS`)."""
    model = load_bytes(artifact, sha256=None)
    name, sha = install_model_file(shm_dir, artifact)
    meta = GenerationMeta(model_version=model.version, model_sha256=sha, model_file=name)
    entries = meta.to_metadata()
    return {key: entries[key] for key in MODEL_KEYS}


def window_metadata(
    table: pa.Table, model: Mapping[str, str], *, state: str = "live", source: str = "replay"
) -> dict[str, str]:
    """Generation metadata as the daemon writes it; ``model`` (entries from
    :func:`install_model`, possibly altered or empty) is merged in as given."""
    times = table.column("time")
    has_rows = table.num_rows > 0
    meta = GenerationMeta(
        offsets={},
        topic=defaults.TOPIC,
        source=source,
        state=state,
        rows=table.num_rows,
        time_min=iso_utc(times[0].value) if has_rows else "",
        time_max=iso_utc(times[-1].value) if has_rows else "",
        schema_fingerprint=schema_fingerprint(table.schema),
        window_checksum=table_checksum(table),
    )
    return {**meta.to_metadata(), **model}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.sample_window", description=__doc__)
    parser.add_argument("--shm-dir", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path, help="artifact from forecasting.train")
    parser.add_argument("--rows", type=int, default=None)
    args = parser.parse_args(argv)
    args.shm_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    model_meta = install_model(args.shm_dir, args.model.read_bytes())
    table = sample_table(args.rows)
    with Publisher(args.shm_dir) as publisher:
        generation = publisher.publish(table, metadata=window_metadata(table, model_meta))
    print(json.dumps({"generation": generation, **model_meta}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
