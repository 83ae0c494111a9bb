"""The daemon's side of many series: its memory per series and what a publication costs per
changed series, through its own windows and writer.

``python -m bench.daemon_series [--quick] [--sizes N,N,...] [--rows R] [--publications P]
[--changed K,K,...] [--series-per-segment S] [--results-dir DIR]`` prints a table and writes
``bench/results/daemon_series.json`` (``daemon_series-S.json`` with ``--series-per-segment``).

For each series count (default 10,000 and 100,000 series of 336 rows) in a fresh child
process (so that one size's memory does not hide in another's):

* ``rss_bytes_per_series``: the process's resident memory after ``SeriesWindows.load`` of the
  window (a restart's bootstrap: rows kept as arrays; the loaded table then dropped and the
  collector frozen, as the daemon does), minus before, per series;
  ``rss_bytes_per_series_live``: the same once every series has taken one event (each window
  then holds its rows as it does in a live stream);
* ``first_write_s``: ``WindowWriter.write`` of the whole window in segments (a run's first
  generation);
* for each K of ``--changed`` (default 1 and 20): ``write_ms``, the median of
  ``--publications`` writes after one new event on each of K random series, and
  ``ms_per_changed_segment``, that divided by the segments those events touched: the daemon's
  cost per rewritten segment (its table built, its ``shm.segment_checksum``, the file
  written, the manifest).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from bench._common import add_results_dir_option, comma_ints, write_results
from bench._proc import freeze_heap
from cache_daemon.publication import WindowFacts
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.writer import WindowWriter
from contract.series import segment_of
from shm import SERIES_PER_SEGMENT, Publisher

SIZES = [10_000, 100_000]
ROWS = 336
PUBLICATIONS = 30
CHANGED = [1, 20]
_STEP_NS = 1_800 * 1_000_000_000
_T0_NS = 960_163_200 * 1_000_000_000


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _window_table(series: int, rows: int) -> pa.Table:
    ids = pa.array([f"series-{n:07d}" for n in range(series)], pa.string())
    times = _T0_NS + np.arange(rows, dtype=np.int64) * _STEP_NS
    return pa.table(
        {
            "series_id": ids.take(np.repeat(np.arange(series), rows)),
            "time": pa.array(np.tile(times, series), pa.timestamp("ns", tz="UTC")),
            "demand_mw": pa.array(np.random.default_rng(series).random(series * rows) * 1e4),
        }
    )


def _describe(facts: WindowFacts) -> dict[str, str]:
    return {"rows": str(facts.rows), "window_checksum": facts.checksum}


def measure_one(
    series: int, rows: int, publications: int, changed: list[int], per_segment: int
) -> dict[str, Any]:
    """Every figure of one series count, in this process."""
    table = _window_table(series, rows)
    ids = [str(x) for x in table.column("series_id").unique().to_pylist()]
    windows = SeriesWindows(
        ["demand_mw"], max_rows=rows + publications + 10, max_duration_ns=None, max_series=series
    )
    before = _rss_bytes()
    windows.load(table)
    del table
    # As the daemon does once it has bootstrapped (cache_daemon/service.py): what start-up
    # allocated stays out of the cyclic collector's passes.
    freeze_heap()
    loaded = _rss_bytes()
    workdir = Path(tempfile.mkdtemp(prefix="bench-daemon-series-", dir="/dev/shm"))
    out: dict[str, Any] = {
        "series": series,
        "rows_per_series": rows,
        "series_per_segment": per_segment,
    }
    try:
        with Publisher(workdir / "w") as publisher:
            writer = WindowWriter(
                publisher, windows, layout="segmented", series_per_segment=per_segment
            )
            start = time.perf_counter()
            writer.write(_describe)
            out["first_write_s"] = round(time.perf_counter() - start, 2)
            windows.clear_changed()
            segments = publisher.segments
            assert segments is not None
            out["segments"] = segments
            next_time = _T0_NS + rows * _STEP_NS
            rng = random.Random(series)
            for count in changed:
                times: list[float] = []
                per_changed: list[float] = []
                for _ in range(publications):
                    chosen = [rng.choice(ids) for _ in range(count)]
                    for series_id in chosen:
                        windows.apply(series_id, next_time, (1.0,))
                    next_time += _STEP_NS
                    start = time.perf_counter_ns()
                    writer.write(_describe)
                    elapsed = (time.perf_counter_ns() - start) / 1e6
                    windows.clear_changed()
                    touched = len({segment_of(x, segments) for x in chosen})
                    times.append(elapsed)
                    per_changed.append(elapsed / touched)
                out[f"write_ms_{count}"] = round(statistics.median(times), 3)
                out[f"ms_per_changed_segment_{count}"] = round(statistics.median(per_changed), 3)
            for series_id in ids:
                windows.apply(series_id, next_time, (2.0,))
            live = _rss_bytes()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out["rss_bytes_per_series"] = round((loaded - before) / series)
    out["rss_bytes_per_series_live"] = round((live - before) / series)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one tiny size (the smoke test's)")
    parser.add_argument("--sizes", type=comma_ints)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--publications", type=int)
    parser.add_argument("--changed", type=comma_ints, default=CHANGED)
    parser.add_argument("--series-per-segment", type=int, default=SERIES_PER_SEGMENT)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child's size
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ([300] if args.quick else SIZES)
    args.rows = args.rows or (20 if args.quick else ROWS)
    args.publications = args.publications or (3 if args.quick else PUBLICATIONS)
    if args.one is not None:
        figures = measure_one(
            args.one, args.rows, args.publications, args.changed, args.series_per_segment
        )
        print(json.dumps(figures))
        return 0
    results = []
    for size in args.sizes:
        child = [sys.executable, "-m", "bench.daemon_series", "--one", str(size)]
        child += ["--rows", str(args.rows), "--publications", str(args.publications)]
        child += ["--changed", ",".join(map(str, args.changed))]
        child += ["--series-per-segment", str(args.series_per_segment)]
        done = subprocess.run(child, check=True, capture_output=True, text=True)
        results.append(json.loads(done.stdout.splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    name = "daemon_series"
    if args.series_per_segment != SERIES_PER_SEGMENT:
        name += f"-{args.series_per_segment}"
    path = write_results(name, {"sizes": results}, args.results_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
