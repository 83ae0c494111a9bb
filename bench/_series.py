"""The series every design of ``bench.compare`` serves, and the one model they all use.

A regular series at one-minute steps (so ten million rows fit in datetime64[ns] without
overflow) with a daily cycle and noise, ending at a fixed instant; the model is the
service's forecaster (one Ridge tier of 48 lags, horizon 48) fitted on it, so a 50-row
window is enough.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from forecasting.train import Options, train, write_artifact

__all__ = [
    "COLUMN",
    "END_NS",
    "STEP_NS",
    "event_record",
    "rows_for_bytes",
    "series_table",
    "train_model",
    "write_ipc",
]

COLUMN = "demand_mw"
STEP_NS = 60 * 1_000_000_000
END_NS = int(np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64))
_ROW_BYTES = 16  # int64 time + float64 value
_DAY_STEPS = 1440


def rows_for_bytes(nbytes: int) -> int:
    return nbytes // _ROW_BYTES


def series_table(rows: int, *, end_ns: int = END_NS, seed: int = 0) -> pa.Table:
    """``rows`` rows ending at ``end_ns``: ``time`` (timestamp[ns, UTC]) and ``demand_mw``."""
    first = end_ns - (rows - 1) * STEP_NS
    times = np.arange(rows, dtype=np.int64)
    times *= STEP_NS
    times += first
    daily = 30_000.0 + 5_000.0 * np.sin(np.arange(_DAY_STEPS) * (2 * np.pi / _DAY_STEPS))
    phase = np.arange(rows, dtype=np.int64)
    phase += (first // STEP_NS) % _DAY_STEPS
    phase %= _DAY_STEPS
    values = daily[phase]
    del phase
    values += np.random.default_rng(seed).standard_normal(rows) * 300.0
    return pa.table(
        {
            "time": pa.array(times, pa.timestamp("ns", tz="UTC")),
            COLUMN: pa.array(values, pa.float64()),
        }
    )


def train_model(directory: Path) -> Path:
    """Fit the model on two weeks of the series and write ``model.skops`` (+ ``.sha256``)."""
    frame = series_table(14 * _DAY_STEPS, seed=1).to_pandas()
    options = Options(tiers=(48,), horizon=48, candidates=("ridge",))
    data, _ = train(frame, time_col="time", target=COLUMN, options=options)
    path = directory / "model.skops"
    write_artifact(str(path), data)
    return path


def write_ipc(table: pa.Table, path: Path) -> None:
    """``table`` as one record batch in an Arrow IPC file (the baselines' preload file)."""
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())


def event_record(index: int, *, first_ns: int) -> bytes:
    """The JSON record of the ``index``-th event after ``first_ns``, one step apart."""
    stamp = np.datetime_as_string(np.datetime64(first_ns + index * STEP_NS, "ns"), unit="s")
    event: dict[str, Any] = {"time": f"{stamp}Z", COLUMN: 30_000.0 + (index % 97)}
    return json.dumps(event).encode()
