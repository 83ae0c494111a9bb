"""Measurement 3 of ``bench.compare``: ``/predict`` under load, ours against the seed design.

Per window size, both servers start on the same window and the same model (ours: Gunicorn
with the configuration's default workers on a published shm window with a live heartbeat;
the seed design: one uvicorn process that preloaded the window, its consumer attached to an
idle topic when a broker is available). Each is warmed up, then driven by Locust at every
user level in turn, one server at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import _cmp_servers as servers
from bench._cmp_load import Locust, warm_up
from bench._cmp_series import series_table, write_ipc
from bench._cmp_window import OursWindow

__all__ = ["measure"]


def measure(
    sizes: list[int],
    user_levels: list[int],
    seconds: float,
    model_path: Path,
    workdir: Path,
    logdir: Path,
    kafka: Mapping[str, str],
) -> dict[str, Any]:
    """Locust figures per (design, rows, users); ``kafka`` = the seed's broker variables
    (empty: its consumer is off)."""
    runs: list[dict[str, Any]] = []
    workers = 0
    for rows in sizes:
        table = series_table(rows)
        ipc = workdir / f"http-{rows}.arrow"
        write_ipc(table, ipc)
        seed_env = {"MODEL_PATH": str(model_path), "BASELINE_WINDOW_FILE": str(ipc), **kafka}
        with OursWindow(table, workdir / f"http-shm-{rows}", model_path) as window:
            del table
            ours = servers.ours(window.directory, logdir)
            seed = servers.seed(seed_env, logdir)
            try:
                ours.wait(lambda status, _: status == 200, "/readyz", timeout=180)
                seed.wait(lambda status, _: status == 200, "/cache", timeout=180)
                workers = len(ours.pids()) - 1
                for design, server in (("ours", ours), ("seed", seed)):
                    warm_up(server.port)
                    for users in user_levels:
                        tag = f"{design}-{rows}-{users}"
                        stats = Locust(server.port, users, seconds, logdir, tag).result()
                        runs.append({"design": design, "rows": rows, **stats})
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
    return {
        "sizes": sizes,
        "users": user_levels,
        "seconds": seconds,
        "ours_workers": workers,
        "seed_consumer": "attached to an idle topic" if kafka else "off (no broker)",
        "runs": runs,
        "throughput_ratio": _ratios(runs),
    }


def _ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """ours req/s ÷ seed req/s, per rows and users (keys are strings for JSON)."""
    by_key = {(r["design"], r["rows"], r["users"]): r["rps"] for r in runs}
    ratios: dict[str, dict[str, float | None]] = {}
    for (design, rows, users), rps in by_key.items():
        if design != "ours":
            continue
        seed = by_key.get(("seed", rows, users))
        ratio = round(rps / seed, 2) if seed else None
        ratios.setdefault(str(rows), {})[str(users)] = ratio
    return ratios
