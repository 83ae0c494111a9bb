"""HTTP benchmark: ``/predict`` with ``{}`` against ``/healthz`` on one Gunicorn, same run.

``python -m bench.http [--quick] [--workers N] [--worker-class gevent|gthread|sync] [--users 20]``

Starts Gunicorn with ``gunicorn.conf.py`` on a loopback socket, serving a real shm window (the
sample series, 4,032 rows) that a background thread republishes every second (one row later
each time, with a live daemon heartbeat), so the workers switch generations during the run.
Locust (headless, FastHttpUser, no think time) then drives ``/healthz`` and ``/predict``
in alternating phases (several rounds, medians reported) with the same number of users.
Prints a table and writes ``bench/results/http.json``.

Goals: ``/predict`` throughput >= 0.6 x ``/healthz``; p99 <= 20 ms at 20 users; 0 failures.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from bench._common import write_results
from forecasting.train import train
from scripts.sample_window import SAMPLE, install_model, sample_table, window_metadata
from shm import Publisher

ROOT = Path(__file__).resolve().parent.parent
GOAL_RATIO = 0.6
GOAL_P99_MS = 20.0


class _Republisher(threading.Thread):
    """Publishes a new generation every ``interval`` seconds and a live heartbeat."""

    def __init__(self, directory: Path, model: dict[str, str], interval: float) -> None:
        super().__init__(daemon=True)
        self.directory = directory
        self.model = model
        self.interval = interval
        self.stop = threading.Event()
        self.publisher = Publisher(directory)
        self.generations = 0
        self._end = 3000

    def publish_once(self) -> None:
        self._end = 3000 + (self._end - 2999) % 1000
        table = sample_table(2000, end=self._end)
        gen = self.publisher.publish(table, metadata=window_metadata(table, self.model))
        self.generations += 1
        status = {
            "pid": os.getpid(),
            "state": "live",
            "source": "replay",
            "heartbeat_ns": time.time_ns(),
            "last_publish_ns": time.time_ns(),
            "generation": gen,
            "lag": {},
            "counters": {"events": gen, "dead_letters": {}, "dropped_late": 0, "publish_errors": 0},
            "last_error": None,
        }
        tmp = self.directory / ".status.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(self.directory / "daemon-status.json")

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.publish_once()


def _start_gunicorn(
    shm_dir: Path, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], int, socket.socket]:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SHM_DIR": str(shm_dir),
        "WEB_BIND": f"fd://{sock.fileno()}",
        "WEB_WORKER_CLASS": args.worker_class,
        "LOG_LEVEL": "WARNING",
    }
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"],
        cwd=ROOT,
        env=env,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port, sock


def _wait_ready(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not become ready")


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


def _locust(port: int, target: str, users: int, seconds: int, workdir: Path) -> dict[str, Any]:
    prefix = workdir / f"locust-{target}"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "bench" / "_locust_http.py"),
        "--headless",
        "--only-summary",
        "--reset-stats",
        "--skip-log-setup",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        f"http://127.0.0.1:{port}",
        "--csv",
        str(prefix),
        "--target",
        target,
        "--exit-code-on-error",
        "0",
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with (workdir / f"locust-{target}_stats.csv").open() as fh:
        rows = {row["Name"]: row for row in csv.DictReader(fh)}
    row = rows["Aggregated"]
    if int(row["Request Count"]) == 0:
        # Locust writes "N/A" percentiles for a phase that completed nothing.
        raise RuntimeError(f"the {seconds} s Locust phase on /{target} completed no request")
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": round(float(row["Requests/s"]), 1),
        "avg_ms": round(float(row["Average Response Time"]), 2),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
        "max_ms": float(row["Max Response Time"]),
    }


def _median(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-field median over rounds; counts are summed."""
    out: dict[str, Any] = {}
    for key in results[0]:
        values = [r[key] for r in results]
        out[key] = sum(values) if key in {"requests", "failures"} else statistics.median(values)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    parent = Path(tempfile.mkdtemp(prefix="bench-http-", dir="/dev/shm"))
    shm_dir = parent / "window"
    shm_dir.mkdir(mode=0o750)
    load_before = os.getloadavg()[0]
    artifact, report = train(pd.read_parquet(SAMPLE))
    model = install_model(shm_dir, artifact)
    publisher = _Republisher(shm_dir, model, interval=1.0)
    publisher.publish_once()
    proc, port, sock = _start_gunicorn(shm_dir, args)
    try:
        _wait_ready(port)
        publisher.start()
        with contextlib.suppress(RuntimeError):  # a warm-up may complete nothing on a busy host
            _locust(port, "predict", args.users, 2, parent)  # imports, first generations
        # Alternate short phases so that load from other processes on the machine falls on
        # both endpoints alike; each figure below is the median over the rounds.
        rounds: dict[str, list[dict[str, Any]]] = {"healthz": [], "predict": []}
        server_before = {t: _server_buckets(port, f"/{t}") for t in ("healthz", "predict")}
        for _ in range(args.rounds):
            for target in ("healthz", "predict"):
                rounds[target].append(_locust(port, target, args.users, args.seconds, parent))
        server_after = {t: _server_buckets(port, f"/{t}") for t in ("healthz", "predict")}
    finally:
        publisher.stop.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        sock.close()
        publisher.publisher.close()
        shutil.rmtree(parent, ignore_errors=True)
    healthz, predict = _median(rounds["healthz"]), _median(rounds["predict"])
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
            "window_rows": 2000,
            "model_version": report["model_version"],
            "generations_published": publisher.generations,
            "load_generator": "locust headless FastHttpUser, no wait, same machine",
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
            for t in ("healthz", "predict")
        },
        "ratios": [round(r, 3) for r in ratios],
        "goals": {
            "ratio_ge_0.6": ratio >= GOAL_RATIO,
            "p99_le_20ms": predict["p99_ms"] <= GOAL_P99_MS,
            "zero_failures": predict["failures"] == 0 and healthz["failures"] == 0,
        },
    }


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'endpoint':<10} {'req/s':>9} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'fail':>5}"]
    for name in ("healthz", "predict"):
        r = result[name]
        lines.append(
            f"{name:<10} {r['rps']:>9.1f} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} "
            f"{r['p99_ms']:>7.0f} {r['failures']:>5}"
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
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 3, 1
    result = run(args)
    path = write_results("http", result)
    print(_table(result))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
