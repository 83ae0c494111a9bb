"""The worker side of ``bench.series_scale``: ``python -m bench._series_reader DIR SERIES``.

A process that reads the published window as a web worker does (one ``shm.Reader``), driven
by one command per line on stdin, answering one JSON line per command on stdout:

``open``
    the first ``current()`` of this process (a new worker) and its first lookup;
``first CHANGED OTHER``
    after a publication: ``current()`` plus the lookup of series OTHER (a worker's first
    request), then the lookup of CHANGED (the first into the rewritten segment);
``lookups N SEED``
    N lookups of random series, twice: the first pass (a segment not touched yet decodes its
    index) and again (every segment indexed), each timed on its own; then N lookups of one
    series (everything it touches in the CPU caches: the work itself);
``pss``
    this process's memory (``/proc/self/smaps_rollup``, see :func:`pss_kib`) and the same
    before it opened anything;
``quit``.

Series are named ``series_id(n)`` for ``n < SERIES``.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from shm import Reader, Snapshot

__all__ = ["pss_kib", "series_id"]


def series_id(number: int) -> str:
    """The id of series ``number`` in the benchmark's windows."""
    return f"s{number:07d}"


def pss_kib() -> dict[str, int]:
    """This process's memory, KiB: ``pss_kib`` (proportional set size), split into
    ``pss_anon_kib`` (its own heap: indexes, Python objects) and ``pss_shmem_kib`` (its
    share of the mapped window pages it touched, which the kernel maps in 64 KiB runs
    around each fault), and ``rss_kib``."""
    keys = {"Pss": "pss_kib", "Pss_Anon": "pss_anon_kib", "Pss_Shmem": "pss_shmem_kib"}
    keys["Rss"] = "rss_kib"
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in keys:
            out[keys[key]] = int(rest.split()[0])
    return out


def _lookup(snapshot: Snapshot, series: str) -> int:
    start = time.perf_counter_ns()
    table = snapshot.series_table(series)
    elapsed = time.perf_counter_ns() - start
    if table is None or table.num_rows == 0:
        raise RuntimeError(f"series {series} not found in generation {snapshot.generation}")
    return elapsed


def _current(reader: Reader) -> Snapshot:
    snapshot = reader.current()
    if snapshot is None:
        raise RuntimeError("nothing published")
    return snapshot


def main(directory: str, series: int) -> int:
    baseline = pss_kib()
    reader = Reader(directory)
    for line in sys.stdin:
        command, *args = line.split()
        out: dict[str, Any]
        if command == "open":
            start = time.perf_counter_ns()
            snapshot = _current(reader)
            opened = time.perf_counter_ns() - start
            first = _lookup(snapshot, series_id(series // 2))
            out = {"open_us": opened / 1e3, "open_first_lookup_us": first / 1e3}
        elif command == "first":
            start = time.perf_counter_ns()
            snapshot = _current(reader)
            _lookup(snapshot, args[1])
            first = time.perf_counter_ns() - start
            changed = _lookup(snapshot, args[0])
            out = {
                "generation": snapshot.generation,
                "first_request_us": first / 1e3,
                "changed_lookup_us": changed / 1e3,
            }
        elif command == "lookups":
            rng = random.Random(int(args[1]))
            names = [series_id(rng.randrange(series)) for _ in range(int(args[0]))]
            snapshot = _current(reader)
            cold = [_lookup(snapshot, name) for name in names]
            warm = [_lookup(snapshot, name) for name in names]
            same = [_lookup(snapshot, names[0]) for _ in names]
            out = {
                "lookup_first_pass_us": statistics.median(cold) / 1e3,
                "lookup_us": statistics.median(warm) / 1e3,
                "lookup_p99_us": sorted(warm)[int(len(warm) * 0.99)] / 1e3,
                "lookup_same_us": statistics.median(same) / 1e3,
            }
        elif command == "pss":
            out = {
                **pss_kib(),
                "baseline_pss_kib": baseline["pss_kib"],
                "baseline_pss_anon_kib": baseline["pss_anon_kib"],
            }
        else:
            return 0
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
