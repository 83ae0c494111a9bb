"""Helpers shared by the benchmarks: timing, tables, results on disk."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def window_table(rows: int, *, seed: int = 0) -> pa.Table:
    """A window-shaped table: UTC timestamps at 30-minute steps and one float64 column."""
    start = np.datetime64("2000-06-05T00:00:00", "ns").astype(np.int64)
    times = start + np.arange(rows, dtype=np.int64) * (30 * 60 * 1_000_000_000)
    values = np.random.default_rng(seed).normal(30_000.0, 5_000.0, rows)
    return pa.table(
        {"time": pa.array(times, pa.timestamp("ns", tz="UTC")), "demand_mw": pa.array(values)}
    )


def time_call(fn: Callable[[], object], *, min_repeats: int, budget_s: float) -> list[float]:
    """Wall-clock durations of ``fn()`` in seconds: at least ``min_repeats`` calls, then more
    until ``budget_s`` is spent."""
    samples: list[float] = []
    spent_until = time.perf_counter() + budget_s
    while len(samples) < min_repeats or time.perf_counter() < spent_until:
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e9)
    return samples


def median_us(samples: list[float]) -> float:
    """Median of ``samples`` (seconds) in microseconds."""
    return statistics.median(samples) * 1e6


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pyarrow": pa.__version__,
    }


def add_results_dir_option(parser: argparse.ArgumentParser) -> None:
    """``--results-dir DIR``: where the command writes its results (default ``bench/results``;
    the smoke tests pass a temporary directory so they never overwrite a full run's)."""
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=RESULTS_DIR,
        help=f"write the results here instead of {RESULTS_DIR}",
    )


def write_results(name: str, payload: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write ``payload`` (plus the machine description) to ``<directory>/<name>.json``
    (default ``bench/results/``)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path
