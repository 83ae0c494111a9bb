"""Measurement 3 of ``bench.compare``: ``/predict`` under load, ours against the seed design.

Per window size, both servers start on the same window and the same model (ours: Gunicorn
with ``gunicorn.conf.py``'s defaults on a published shm window with a live heartbeat; the
seed design: one uvicorn process that preloaded the window, its consumer attached to an idle
topic when a broker is available). Each is warmed up; then Locust drives one server at a time,
alternating between the designs (ours then seed, then seed then ours on the next repeat) so
that a change in the machine's background load falls on both. The figures per (design, rows,
users) are the medians over the repeats; every run is kept under ``repeats_raw``.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import _servers as servers
from bench._locust import Locust, medians
from bench._series import series_table, write_ipc
from bench._window import LiveWindow

__all__ = ["measure"]


def _warm_up(port: int, requests: int = 20) -> None:
    """A few sequential ``POST /predict`` so first-request costs stay out of the figures."""
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/predict", b"{}", {"Content-Type": "application/json"})
            conn.getresponse().read()
        finally:
            conn.close()


def measure(
    sizes: list[int],
    user_levels: list[int],
    seconds: float,
    model_path: Path,
    workdir: Path,
    logdir: Path,
    kafka: Mapping[str, str],
    *,
    repeats: int = 1,
) -> dict[str, Any]:
    """Locust figures per (design, rows, users); ``kafka`` = the seed's broker variables
    (empty: its consumer is off)."""
    raw: list[dict[str, Any]] = []
    workers = 0
    for rows in sizes:
        table = series_table(rows)
        ipc = workdir / f"http-{rows}.arrow"
        write_ipc(table, ipc)
        seed_env = {"MODEL_PATH": str(model_path), "BASELINE_WINDOW_FILE": str(ipc), **kafka}
        with LiveWindow(workdir / f"http-shm-{rows}", model_path.read_bytes(), table) as window:
            del table
            ours = servers.ours(window.directory, logdir)
            seed = servers.seed(seed_env, logdir)
            try:
                ours.wait_http("/readyz", timeout=180)
                seed.wait_http("/cache", timeout=180)
                workers = len(ours.pids()) - 1
                pair = [("ours", ours), ("seed", seed)]
                for _, server in pair:
                    _warm_up(server.port)
                for rep in range(repeats):
                    for users in user_levels:
                        for design, server in pair if rep % 2 == 0 else pair[::-1]:
                            tag = f"{design}-{rows}-{users}-{rep}"
                            stats = Locust(server.port, users, seconds, logdir, tag).result()
                            raw.append({"design": design, "rows": rows, "rep": rep, **stats})
                            print(
                                f"  {design:<5} {rows:>10,} rows {users:>4} users: "
                                f"{stats['rps']:>8,.1f} req/s  p50 {stats['p50_ms']:g}  "
                                f"p95 {stats['p95_ms']:g}  p99 {stats['p99_ms']:g} ms  "
                                f"failures {stats['failures']}",
                                flush=True,
                            )
            finally:
                ours.stop()
                seed.stop()
                ipc.unlink()
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for one in raw:
        groups.setdefault((one["design"], one["rows"], one["users"]), []).append(one)
    # One run per (design, rows, users): the medians over the repeats, counts summed.
    runs = [{k: v for k, v in medians(group).items() if k != "rep"} for group in groups.values()]
    by_key = {(r["design"], r["rows"], r["users"]): r["rps"] for r in runs}
    ratios: dict[str, dict[str, float | None]] = {}
    for (design, rows, users), rps in by_key.items():
        if design == "ours":
            seed_rps = by_key.get(("seed", rows, users))
            ratios.setdefault(str(rows), {})[str(users)] = (
                round(rps / seed_rps, 2) if seed_rps else None
            )
    return {
        "sizes": sizes,
        "users": user_levels,
        "seconds": seconds,
        "repeats": repeats,
        "ours_workers": workers,
        "seed_consumer": "attached to an idle topic" if kafka else "off (no broker)",
        "runs": runs,
        "throughput_ratio": ratios,
        "repeats_raw": raw,
    }
