"""Read-path benchmark: what a worker pays per request to get the latest window.

``python -m bench.readpath [--quick] [--results-dir DIR]`` prints a table and writes
``bench/results/readpath.json`` (or into DIR).
For each window size it measures, in the same run:

* ``shm_unchanged``: ``Reader.current()`` when the generation did not change (every request);
* ``shm_new_generation``: the first ``current()`` after a publish (once per generation), and the
  one-off ``Snapshot.frame()`` conversion;
* the alternatives: ``df.copy(deep=True)`` under a lock (the seed design, per request),
  ``pickle.loads`` of the frame (what a Redis-style cache pays), ``pandas.read_parquet`` from tmpfs.
"""

from __future__ import annotations

import argparse
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bench._common import (
    add_results_dir_option,
    median_us,
    shm_read_us,
    time_call,
    write_results,
)
from bench._series import series_table
from bench.baselines.seed import SeedService

FULL_SIZES = [1_000, 100_000, 1_000_000, 10_000_000]
QUICK_SIZES = [1_000, 100_000]

TARGET_UNCHANGED_US = 5.0
TARGET_FLATNESS = 1.5
TARGET_NEW_GENERATION_MS = 2.0


def measure(rows: int, workdir: Path, *, quick: bool) -> dict[str, Any]:
    """All read-path costs for one window size, in microseconds (medians)."""
    budget = 0.2 if quick else 1.0
    table = series_table(rows)
    shm = shm_read_us(table, workdir / f"rows-{rows}", quick=quick, budget=budget)
    result: dict[str, Any] = {
        "rows": rows,
        "bytes": table.nbytes,
        "shm_unchanged_us": shm["unchanged"],
        "shm_new_generation_us": shm["new_generation"],
        "shm_frame_once_us": shm["frame_once"],
    }
    df = table.to_pandas()
    seed = SeedService()  # the seed design's read path: a deep copy under its lock
    seed.df = df
    repeats = 3 if rows >= 1_000_000 else 20
    result["deep_copy_locked_us"] = median_us(
        time_call(seed.frame_for_request, min_repeats=repeats, budget_s=budget)
    )
    blob = pickle.dumps(df, protocol=pickle.HIGHEST_PROTOCOL)
    result["unpickle_us"] = median_us(
        time_call(lambda: pickle.loads(blob), min_repeats=repeats, budget_s=budget)
    )
    parquet = workdir / f"rows-{rows}.parquet"
    df.to_parquet(parquet)
    result["read_parquet_us"] = median_us(
        time_call(lambda: pd.read_parquet(parquet), min_repeats=repeats, budget_s=budget)
    )
    return result


def verdicts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, checked against this run."""
    smallest, largest = rows[0], rows[-1]
    flatness = largest["shm_unchanged_us"] / smallest["shm_unchanged_us"]
    return {
        "unchanged_median_max_us": max(r["shm_unchanged_us"] for r in rows),
        "unchanged_ok": all(r["shm_unchanged_us"] <= TARGET_UNCHANGED_US for r in rows),
        "flatness_largest_over_smallest": flatness,
        "flatness_ok": flatness <= TARGET_FLATNESS,
        "new_generation_largest_ms": largest["shm_new_generation_us"] / 1000,
        "new_generation_ok": largest["shm_new_generation_us"] / 1000 <= TARGET_NEW_GENERATION_MS,
        "deep_copy_over_unchanged_largest": largest["deep_copy_locked_us"]
        / largest["shm_unchanged_us"],
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'rows':>10} {'unchanged':>10} {'new gen':>10} {'frame':>10} "
        f"{'deepcopy':>12} {'unpickle':>12} {'parquet':>12}   (microseconds, medians)"
    )
    print(header)
    for r in rows:
        print(
            f"{r['rows']:>10,} {r['shm_unchanged_us']:>10.2f} {r['shm_new_generation_us']:>10.1f}"
            f" {r['shm_frame_once_us']:>10.1f} {r['deep_copy_locked_us']:>12.1f}"
            f" {r['unpickle_us']:>12.1f} {r['read_parquet_us']:>12.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, short budgets")
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    workdir = Path(tempfile.mkdtemp(prefix="bench-readpath-", dir="/dev/shm"))
    try:
        rows = [measure(size, workdir, quick=args.quick) for size in sizes]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(rows)
    summary = verdicts(rows)
    for key, value in summary.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    payload = {"quick": args.quick, "sizes": rows, "verdicts": summary}
    path = write_results("readpath", payload, args.results_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
