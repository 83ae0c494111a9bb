"""Processes of the shm-level soak: ``python -m tests.concurrency._shm_soak writer DIR INTERVAL_MS``
and ``python -m tests.concurrency._shm_soak reader DIR READS``.

The writer publishes a window-shaped table (``time`` + ``demand_mw``, 2,000 to 4,032 rows) every
INTERVAL_MS until SIGTERM, each generation different in length and values, with metadata
``rows``, ``first``, ``last`` and ``window_checksum``; it prints how many it published.

A reader calls ``Reader.current()`` READS times as fast as it can and checks every read: the
generation never goes back, the row count and the first and last values are the ones the
metadata promises, and (once per generation per process, through ``Snapshot.derive``) the
checksum of the mapped bytes equals ``window_checksum``. It prints one JSON line of counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time

import pyarrow as pa

from shm import Publisher, Reader, Snapshot, table_checksum
from tests.concurrency._series import table_of

__all__: list[str] = []


def _table(generation: int) -> pa.Table:
    rows = 2000 + (generation * 7919) % 2033
    return table_of(range(generation, generation + rows))


def writer(directory: str, interval_ms: float) -> int:
    stop = False

    def handle(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, handle)
    # Keep the pace against eight spinning readers on a small machine, when allowed (root).
    with contextlib.suppress(OSError):
        os.nice(-10)
    tables = [_table(g) for g in range(64)]  # precomputed: the writer's cost is the publish
    published = 0
    period = interval_ms / 1000
    with Publisher(directory) as publisher:
        print("ready", flush=True)
        next_at = time.monotonic()
        while not stop:
            table = tables[(publisher.generation + 1) % len(tables)]
            values = table.column("demand_mw")
            publisher.publish(
                table,
                metadata={
                    "rows": str(table.num_rows),
                    "first": repr(values[0].as_py()),
                    "last": repr(values[-1].as_py()),
                    "window_checksum": table_checksum(table),
                },
            )
            published += 1
            next_at += period
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()
    print(published, flush=True)
    return 0


def _checksum_ok(snap: Snapshot) -> bool:
    return snap.data_checksum() == snap.metadata["window_checksum"]


def reader(directory: str, reads: int) -> int:
    source = Reader(directory)
    last = 0
    generations = regressions = mismatches = done = 0
    started = time.monotonic()
    for _ in range(reads):
        snap = source.current()
        assert snap is not None
        gen = snap.generation
        if gen < last:
            regressions += 1
        if gen != last:
            generations += 1
            last = gen
        meta, table = snap.metadata, snap.table
        values = table.column("demand_mw")
        if (
            table.num_rows != int(meta["rows"])
            or repr(values[0].as_py()) != meta["first"]
            or repr(values[-1].as_py()) != meta["last"]
            or not snap.derive("soak.checksum", _checksum_ok)
        ):
            mismatches += 1
        done += 1
    out = {
        "reads": done,  # counted, so the caller's total is what was read and checked
        "generations_seen": generations,
        "regressions": regressions,
        "mismatches": mismatches,
        "seconds": round(time.monotonic() - started, 2),
    }
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    role, directory, number = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sys.exit(writer(directory, number) if role == "writer" else reader(directory, int(number)))
