"""Measurement 3 of ``bench.compare``: ``/predict`` under load, ours against the seed design.

Per window size, both servers start on the same window and the same model (ours: Gunicorn
with ``gunicorn.conf.py``'s defaults on a published shm window with a live heartbeat; the
seed design: one uvicorn process that preloaded the window, its consumer attached to an idle
topic when a broker is available). Each is warmed up; then Locust drives one server at a time,
alternating between the designs (ours then seed, then seed then ours on the next repeat) so
that a change in the machine's background load falls on both. The figures per (design, rows,
users) are the medians over the repeats; every run is kept under ``repeats_raw``.

Locust shares the two cores with the server and tops out near a thousand requests per second
per core: each Locust figure carries ``locust_cpu_share``, the generator's own CPU. Right
after each Locust run, wrk (a generator in C, :mod:`bench._wrk`) drives the same server with
as many connections as Locust had users: the server's throughput ceiling, under ``wrk``
(``{"skipped": why}`` without wrk).

A Locust run that completed no request (the seed design at 10 M rows may answer nothing within
a phase) is kept as such (:func:`bench._locust.no_answer`): the report and the plots say
"no answer within N s" for it, and the benchmark goes on with the next run.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import _servers as servers
from bench._locust import COUNTS, Locust, medians, no_answer
from bench._series import series_table, write_ipc
from bench._window import LiveWindow
from bench._wrk import Wrk, missing

__all__ = ["WRK_COUNTS", "measure"]

# wrk figures summed over repeats (the others are medians).
WRK_COUNTS = ("requests", "non_2xx", "socket_errors")
Key = tuple[str, int, int]  # design, rows, users (or connections)


def _warm_up(port: int, requests: int = 20) -> None:
    """A few sequential ``POST /predict`` so first-request costs stay out of the figures."""
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/predict", b"{}", {"Content-Type": "application/json"})
            conn.getresponse().read()
        finally:
            conn.close()


def _line(stats: dict[str, Any]) -> str:
    """One Locust run's figures on one line."""
    head = f"{stats['users']:>4} users: {stats['rps']:>8,.1f} req/s  "
    cpu = f"Locust CPU {stats['locust_cpu_share']:.0%}"
    if empty := no_answer(stats):
        return f"{head}{empty}  failures {stats['failures']}  {cpu}"
    return (
        f"{head}p50 {stats['p50_ms']:g}  p95 {stats['p95_ms']:g}  p99 {stats['p99_ms']:g} ms  "
        f"failures {stats['failures']}  {cpu} "
        f"({stats['locust_cpu_ms_per_request']:.2f} ms/request)"
    )


def _merge(
    raw: list[dict[str, Any]], counts: tuple[str, ...] = COUNTS
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float | None]]]:
    """One run per (design, rows, users), the medians over the repeats (``counts`` summed),
    and ours / seed req/s per rows and users."""
    groups: dict[Key, list[dict[str, Any]]] = {}
    for one in raw:
        groups.setdefault((one["design"], one["rows"], one["users"]), []).append(one)
    # The key's numbers stay as they were (a median of two ints is a float).
    merged = ((key, medians(group, counts)) for key, group in groups.items())
    runs = [
        {**{k: v for k, v in run.items() if k != "rep"}, "rows": rows, "users": users}
        for (_, rows, users), run in merged
    ]
    by_key = {(r["design"], r["rows"], r["users"]): r["rps"] for r in runs}
    ratios: dict[str, dict[str, float | None]] = {}
    for (design, rows, users), rps in by_key.items():
        if design == "ours":
            seed_rps = by_key.get(("seed", rows, users))
            ratios.setdefault(str(rows), {})[str(users)] = (
                round(rps / seed_rps, 2) if seed_rps else None
            )
    return runs, ratios


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
    wrk_seconds: float | None = None,
    wrk_threads: int = 1,
) -> dict[str, Any]:
    """Locust figures per (design, rows, users) and wrk's ceilings next to them (``wrk_seconds``
    per run, ``seconds`` when None); ``kafka`` = the seed's broker variables (empty: its
    consumer is off)."""
    raw: list[dict[str, Any]] = []
    wrk_raw: list[dict[str, Any]] = []
    wrk_missing = missing()
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
                            key = {"design": design, "rows": rows, "rep": rep}
                            stats = Locust(server.port, users, seconds, logdir, tag).result()
                            raw.append({**key, **stats})
                            print(f"  {design:<5} {rows:>10,} rows {_line(stats)}", flush=True)
                            if wrk_missing:
                                continue
                            run = Wrk(
                                server.port,
                                users,
                                seconds if wrk_seconds is None else wrk_seconds,
                                logdir,
                                tag,
                                threads=wrk_threads,
                            )
                            ceiling = run.result()
                            del ceiling["socket_errors_by_kind"]
                            wrk_raw.append({**key, "users": users, **ceiling})
                            print(
                                f"  {design:<5} {rows:>10,} rows {users:>4} conns: "
                                f"{ceiling['rps']:>8,.1f} req/s  (wrk) "
                                f"p50 {ceiling['p50_ms']}  p99 {ceiling['p99_ms']} ms  "
                                f"non-2xx {ceiling['non_2xx']}  "
                                f"socket errors {ceiling['socket_errors']}  "
                                f"wrk CPU {ceiling['wrk_cpu_share']:.0%}",
                                flush=True,
                            )
            finally:
                ours.stop()
                seed.stop()
                ipc.unlink()
    runs, ratios = _merge(raw)
    ceilings: dict[str, Any] = {"skipped": wrk_missing}
    if not wrk_missing:
        wrk_runs, wrk_ratios = _merge(wrk_raw, WRK_COUNTS)
        ceilings = {
            "seconds": seconds if wrk_seconds is None else wrk_seconds,
            "threads": wrk_threads,
            "script": "bench/_wrk_predict.lua",
            "runs": wrk_runs,
            "throughput_ratio": wrk_ratios,
            "repeats_raw": wrk_raw,
        }
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
        "wrk": ceilings,
    }
