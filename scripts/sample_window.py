"""Publish the sample series as a window into an shm directory, without the daemon.

For tests, benchmarks and trying the web side alone::

    python -m scripts.sample_window --shm-dir /dev/shm/shm-forecast --model .run/model.skops

It installs the model artifact as ``model-<sha256>.skops`` and publishes one generation with
the metadata the daemon would write (see `cache_daemon/publication.py`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa

from forecasting import install, load_bytes
from shm import Publisher, table_checksum

__all__ = ["SAMPLE", "install_model", "sample_table", "window_metadata"]

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "electricity_demand_halfhourly.parquet"


def sample_table(rows: int | None = None, *, end: int | None = None) -> pa.Table:
    """The sample series as a window table (``time`` UTC ns + ``demand_mw``).

    ``end`` (exclusive row index) and ``rows`` pick a slice: the last ``rows`` rows before
    ``end``.
    """
    frame = pd.read_parquet(SAMPLE)
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize("UTC")
    stop = len(frame) if end is None else end
    start = 0 if rows is None else max(0, stop - rows)
    part = frame.iloc[start:stop].reset_index(drop=True)
    return pa.table(
        {
            "time": pa.array(part["time"], type=pa.timestamp("ns", tz="UTC")),
            "demand_mw": pa.array(part["demand_mw"], type=pa.float64()),
        }
    )


def install_model(shm_dir: Path, artifact: bytes) -> dict[str, str]:
    """Install a verified artifact into ``shm_dir``; returns its metadata entries."""
    model = load_bytes(artifact, sha256=None)
    name, sha = install(shm_dir, artifact)
    return {"model_file": name, "model_sha256": sha, "model_version": model.version}


def window_metadata(
    table: pa.Table, model: Mapping[str, str], *, state: str = "live", source: str = "replay"
) -> dict[str, str]:
    """Generation metadata as the daemon writes it."""
    times = table.column("time")
    iso = [
        str(times[i].as_py().isoformat()) if table.num_rows else ""
        for i in (0, max(0, table.num_rows - 1))
    ]
    return {
        "offsets": "{}",
        "topic": "demand",
        "source": source,
        "state": state,
        "rows": str(table.num_rows),
        "time_min": iso[0],
        "time_max": iso[1],
        "schema_fingerprint": str(table.schema),
        "window_checksum": table_checksum(table),
        **model,
    }


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
