"""Measurement 2 of ``bench.compare``: memory of W workers serving one large window.

For each W, a server with W workers starts on the window and every worker is made to answer
``/cache`` (so each has opened its window: ours maps the shared file and checksums every page
of it while warming up; a private-cache worker has copied it). Then the proportional set size
(PSS, which splits each shared page among the processes mapping it) of the master and every
worker is read with psutil.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from bench import _servers as servers
from bench._proc import Server
from bench._series import rows_for_bytes, series_table, write_ipc
from bench._window import LiveWindow

__all__ = ["measure"]

MIB = 1024 * 1024


def _sample(server: Server, workers: int) -> dict[str, Any]:
    pids = server.pids()
    servers.wait_workers(server, workers)
    time.sleep(0.5)
    pss = {pid: psutil.Process(pid).memory_full_info().pss / MIB for pid in server.pids()}
    master = pss.pop(pids[0])
    per_worker = sorted(pss.values())
    return {
        "workers": workers,
        "total_mib": round(master + sum(per_worker), 1),
        "master_mib": round(master, 1),
        "workers_mib": round(sum(per_worker), 1),
        "per_worker_mib": [round(v, 1) for v in per_worker],
    }


def _run_pair(
    starts: dict[str, Callable[[int], Server]], workers: int
) -> dict[str, dict[str, Any]]:
    """Start every design with ``workers`` workers at once (start-up overlaps), then sample
    each; PSS is per process, so the designs do not disturb each other's figures."""
    running: dict[str, Server] = {}
    samples = {}
    try:
        for design, start in starts.items():
            running[design] = start(workers)
        for design, server in running.items():
            server.wait_http("/cache", timeout=300)
            samples[design] = _sample(server, workers)
            print(
                f"  {design:<8} W={workers}: PSS {samples[design]['total_mib']:,.0f} MiB",
                flush=True,
            )
    finally:
        for server in running.values():
            server.stop()
    return samples


def measure(
    window_bytes: int, worker_counts: list[int], model_path: Path, workdir: Path, logdir: Path
) -> dict[str, Any]:
    """PSS per W for ours and for private copies of a ``window_bytes`` window."""
    table = series_table(rows_for_bytes(window_bytes))
    result: dict[str, Any] = {
        "window_mib": round(table.nbytes / MIB, 1),
        "rows": table.num_rows,
        "workers": worker_counts,
        "ours": [],
        "private": [],
    }
    ipc = workdir / "memory-window.arrow"
    write_ipc(table, ipc)
    config = {"MODEL_PATH": str(model_path), "BASELINE_WINDOW_FILE": str(ipc)}
    try:
        with LiveWindow(workdir / "memory-shm", model_path.read_bytes(), table) as window:
            del table
            result["shm_file_mib"] = round(window.file_bytes() / MIB, 1)
            starts = {
                "ours": lambda w: servers.ours(window.directory, logdir, workers=w),
                "private": lambda w: servers.private(config, logdir, workers=w),
            }
            for workers in worker_counts:
                for design, sample in _run_pair(starts, workers).items():
                    result[design].append(sample)
    finally:
        ipc.unlink()
    return result
