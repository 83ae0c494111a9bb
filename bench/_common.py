"""Helpers shared by the benchmarks: timing, percentiles, the shm read path, runs that take
turns, sizes on the command line, results on disk."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from shm import Publisher, Reader

RESULTS_DIR = Path(__file__).resolve().parent / "results"


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


def pct(values: Sequence[float] | npt.NDArray[np.float64], q: float) -> float | None:
    """The ``q``-th percentile of ``values`` rounded to 0.1 (``q=100``: the maximum); None
    when there are none."""
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def difference_interval(
    mine: Sequence[float],
    theirs: Sequence[float],
    q: float,
    *,
    paired: bool,
    draws: int = 2_000,
) -> tuple[float, float]:
    """The 95 % bootstrap interval of the ``q``-th percentile of ``mine`` less that of
    ``theirs`` (rounded to 0.1): how far the difference of the two percentiles moves when the
    samples are drawn again from themselves, each value taken as independent of the others.
    ``paired``: the two are measurements of the same events, index by index (equal lengths),
    so the events are resampled together; otherwise each sample is resampled on its own.
    ``ValueError`` when either is empty (or, paired, when their lengths differ). Seeded: the
    same samples give the same interval."""
    a, b = np.asarray(mine, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if not a.size or not b.size or (paired and a.size != b.size):
        raise ValueError("two non-empty samples are needed (of equal length when paired)")
    rng = np.random.default_rng(0)
    rows = rng.integers(0, a.size, (draws, a.size))
    other = rows if paired else rng.integers(0, b.size, (draws, b.size))
    diffs = np.percentile(a[rows], q, axis=1) - np.percentile(b[other], q, axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return round(float(low), 1), round(float(high), 1)


def median_us(samples: list[float]) -> float:
    """Median of ``samples`` (seconds) in microseconds."""
    return statistics.median(samples) * 1e6


def shm_read_us(
    table: pa.Table, directory: Path, *, quick: bool, budget: float
) -> dict[str, float]:
    """What a worker pays to obtain ``table`` published in ``directory`` (removed after),
    medians in µs: ``unchanged``, ``Reader.current()`` when the generation did not change
    (every request); ``new_generation``, the first ``current()`` after a publication, and
    ``frame_once``, that snapshot's ``frame()`` (both once per generation)."""
    with Publisher(directory) as publisher:
        publisher.publish(table)
        reader = Reader(directory)
        reader.current()
        repeats = 2_000 if quick else 20_000
        unchanged = time_call(reader.current, min_repeats=repeats, budget_s=budget)
        runs = 3 if quick else 7
        first: list[float] = []
        for _ in range(runs):
            publisher.publish(table)
            first += time_call(reader.current, min_repeats=1, budget_s=0)
        # Apart from the switches: releasing a derived frame would make the next one dearer.
        frame: list[float] = []
        for _ in range(runs):
            publisher.publish(table)
            snapshot = reader.current()
            assert snapshot is not None
            frame += time_call(snapshot.frame, min_repeats=1, budget_s=0)
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "unchanged": median_us(unchanged),
        "new_generation": median_us(first),
        "frame_once": median_us(frame),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pyarrow": pa.__version__,
    }


class Publishing(Protocol):
    """One measured configuration: each call publishes once and records its samples."""

    def publication(self) -> None: ...


def take_turns(runs: Sequence[Publishing], publications: int) -> None:
    """``publications`` rounds in which every run publishes once, in turn: a machine busy
    with something else for a while slows every run alike, so that their ratios stay
    meaningful."""
    for _ in range(publications):
        for run in runs:
            run.publication()


def comma_ints(text: str) -> list[int]:
    """``"1000,100000"`` -> ``[1000, 100000]``: the argparse type of a list of sizes."""
    return [int(n) for n in text.split(",")]


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
