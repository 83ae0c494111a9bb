"""HTTP benchmark: ``/predict`` with ``{}`` against ``/healthz`` on one Gunicorn, same run.

``python -m bench.http [--quick] [--workers N] [--worker-class gevent|gthread|sync] [--users 20]``

Starts Gunicorn with ``gunicorn.conf.py`` on a loopback socket, serving a real shm window (the
sample series, 2,000 rows) that a background thread republishes every second (one row later
each time, with a live daemon heartbeat), so the workers switch generations during the run.
Locust (headless, FastHttpUser, no think time) then drives ``/healthz`` and ``/predict``
in alternating phases (several rounds, medians reported) with the same number of users.
Prints a table and writes ``bench/results/http.json``.

Goals: ``/predict`` throughput >= 0.6 x ``/healthz``; p99 <= 20 ms at 20 users; 0 failures.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench import _servers as servers
from bench._common import add_results_dir_option, write_results
from bench._locust import Locust, medians
from bench._sample import SampleWindow
from bench._window import LiveWindow

GOAL_RATIO = 0.6
GOAL_P99_MS = 20.0
WINDOW_ROWS = 2000
TARGETS = ("healthz", "predict")


def _server_buckets(port: int, route: str) -> dict[float, float]:
    """Cumulative counts of the app's own latency histogram for ``route`` (all workers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "webapp_http_request_duration_seconds_bucket"
                and labels.get("route") == route
                and labels.get("status") == "200"
            ):
                out[float(labels["le"])] = sample.value
    return out


def _bucket_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """Upper bound (ms) of the bucket holding quantile ``q`` of the requests in between."""
    bounds = sorted(after)
    total = after[bounds[-1]] - before.get(bounds[-1], 0.0)
    for le in bounds:
        if total and after[le] - before.get(le, 0.0) >= q * total:
            return le * 1000
    return float("inf")


def run(args: argparse.Namespace) -> dict[str, Any]:
    parent = Path(tempfile.mkdtemp(prefix="bench-http-", dir="/dev/shm"))
    load_before = os.getloadavg()[0]
    # Each second the window moves one row on, cycling over a thousand rows of the sample.
    sample = SampleWindow(WINDOW_ROWS)
    extra = {"WEB_WORKER_CLASS": args.worker_class}
    window = LiveWindow(
        parent / "window", sample.artifact, sample.next_table(), tables=sample.next_table
    )
    rounds: dict[str, list[dict[str, Any]]] = {"healthz": [], "predict": []}
    try:
        with window:
            server = servers.ours(window.directory, parent, workers=args.workers, extra=extra)
            try:
                server.wait_http("/readyz", timeout=90)
                port = server.port
                # Imports, first generations; a warm-up may complete nothing on a busy host.
                with contextlib.suppress(RuntimeError):
                    Locust(port, args.users, 2, parent, "warm-up").result()
                # Alternate short phases so that load from other processes on the machine
                # falls on both endpoints alike; each figure is the median over the rounds.
                server_before = {t: _server_buckets(port, f"/{t}") for t in TARGETS}
                for i in range(args.rounds):
                    for target in TARGETS:
                        run = Locust(
                            port,
                            args.users,
                            args.seconds,
                            parent,
                            f"{target}-{i}",
                            target=target,
                            check_generation=target == "predict",
                        )
                        rounds[target].append(run.result())
                server_after = {t: _server_buckets(port, f"/{t}") for t in TARGETS}
            finally:
                server.stop()
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    healthz, predict = medians(rounds["healthz"]), medians(rounds["predict"])
    ratios = [
        p["rps"] / h["rps"] for h, p in zip(rounds["healthz"], rounds["predict"], strict=True)
    ]
    ratio = statistics.median(ratios)
    return {
        "config": {
            "workers": args.workers or (len(os.sched_getaffinity(0)) + 1),
            "worker_class": args.worker_class,
            "users": args.users,
            "seconds_per_phase": args.seconds,
            "rounds": args.rounds,
            "window_rows": WINDOW_ROWS,
            "model_version": sample.model_version,
            "generations_published": window.generations,
            "load_generator": "locust headless FastHttpUser, no wait, same machine "
            "(its own CPU: locust_cpu_share of each figure)",
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        },
        "healthz": healthz,
        "predict": predict,
        "predict_over_healthz": round(ratio, 3),
        "rounds": rounds,
        "server_side_ms": {
            t: {
                "p50_le": _bucket_quantile(server_before[t], server_after[t], 0.5),
                "p99_le": _bucket_quantile(server_before[t], server_after[t], 0.99),
            }
            for t in TARGETS
        },
        "ratios": [round(r, 3) for r in ratios],
        "goals": {
            "ratio_ge_0.6": ratio >= GOAL_RATIO,
            "p99_le_20ms": predict["p99_ms"] <= GOAL_P99_MS,
            "zero_failures": predict["failures"] == 0 and healthz["failures"] == 0,
        },
    }


def _table(result: dict[str, Any]) -> str:
    lines = [
        f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'fail':>5} "
        f"{'Locust CPU':>10}"
    ]
    for name in ("healthz", "predict"):
        r = result[name]
        lines.append(
            f"{name:<10} {r['rps']:>9.1f} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} "
            f"{r['p99_ms']:>7.0f} {r['failures']:>5} {r['locust_cpu_share']:>10.0%}"
        )
    cfg = result["config"]
    lines.append(
        f"/predict / /healthz = {result['predict_over_healthz']:.2f} (goal >= {GOAL_RATIO}); "
        f"{cfg['workers']} {cfg['worker_class']} workers, {cfg['users']} users, "
        f"{cfg['generations_published']} generations published during the run; "
        f"load average {cfg['load_average_1m'][0]} -> {cfg['load_average_1m'][1]} "
        f"on {os.cpu_count()} CPUs"
    )
    side = result["server_side_ms"]
    lines.append(
        "inside the app (histogram bucket bounds): "
        + ", ".join(
            f"{t} p50 <= {v['p50_le']:g} ms, p99 <= {v['p99_le']:g} ms" for t, v in side.items()
        )
    )
    lines.append(
        "goals: " + ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in result["goals"].items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3 s phases (smoke test)")
    parser.add_argument("--seconds", type=int, default=8, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="healthz/predict phase pairs")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="default: gunicorn.conf.py's")
    parser.add_argument("--worker-class", choices=["gevent", "gthread", "sync"], default="gevent")
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 3, 1
    result = run(args)
    path = write_results("http", result, args.results_dir)
    print(_table(result))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
