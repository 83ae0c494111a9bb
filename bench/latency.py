"""Sequential ``/predict`` latency by body: the window's forecast (``{}``) against a caller's
own history of 336, 1,000 and 3,000 rows, on one real Gunicorn.

``python -m bench.latency [--quick] [--requests N] [--rounds R] [--root DIR]``

Publishes a window of the sample series with a live daemon status, trains the model on it,
starts Gunicorn (``gunicorn.conf.py`` defaults) and sends each body ``N`` times over one
keep-alive connection, one request at a time, in ``R`` interleaved rounds (so that load from
elsewhere on the machine falls on every body alike). Reports each body's median and p90
wall-clock latency (send to last byte read) and the median's ratio to ``{}``; writes
``bench/results/latency.json``. ``--root`` serves the app of another source tree (an older
checkout) with this tree's benchmark, for before/after figures.

Goals: 1,000 rows <= 2 x ``{}``; 3,000 rows <= 3 x ``{}``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench._common import write_results
from bench._proc import ROOT, Server
from forecasting.train import Options, train
from scripts.sample_window import SAMPLE, install_model, sample_table, window_metadata
from shm import Publisher

__all__ = ["GOALS", "bodies", "main"]

GOALS = {1000: 2.0, 3000: 3.0}
ROWS = (336, 1000, 3000)
WINDOW_ROWS = 2000


def bodies(rows: tuple[int, ...] = ROWS) -> dict[str, bytes]:
    """``{}`` and a caller's body of each size: the last rows of the sample series, times
    with ``Z``, inference_length 48."""
    table = sample_table()
    times = table.column("time").to_numpy().astype("datetime64[s]")
    values = table.column("demand_mw").to_numpy()
    out = {"{}": b"{}"}
    for n in rows:
        data = {
            "time": [f"{t}Z" for t in times[-n:].tolist()],
            "demand_mw": [float(v) for v in values[-n:]],
        }
        body = {"index_col": "time", "data": data, "inference_length": 48}
        out[f"{n} rows"] = json.dumps(body).encode()
    return out


def _status(directory: Path, generation: int) -> None:
    now = time.time_ns()
    status = {
        "pid": os.getpid(),
        "state": "live",
        "source": "replay",
        "heartbeat_ns": now,
        "last_publish_ns": now,
        "generation": generation,
        "lag": {},
        "counters": {
            "events": generation,
            "dead_letters": {},
            "dropped_late": 0,
            "publish_errors": 0,
        },
        "last_error": None,
    }
    (directory / "daemon-status.json").write_text(json.dumps(status))


def _post(conn: http.client.HTTPConnection, body: bytes) -> float:
    start = time.perf_counter()
    conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    reply.read()
    elapsed = time.perf_counter() - start
    if reply.status != 200:
        raise RuntimeError(f"/predict answered {reply.status}")
    return elapsed


def _measure(port: int, payloads: dict[str, bytes], requests: int, rounds: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: dict[str, list[float]] = {name: [] for name in payloads}
    try:
        for body in payloads.values():  # warm-up: imports, first derivations
            for _ in range(20):
                _post(conn, body)
        for _ in range(rounds):
            for name, body in payloads.items():
                samples[name] += [_post(conn, body) for _ in range(requests)]
    finally:
        conn.close()
    base = statistics.median(samples["{}"])
    out: dict[str, Any] = {}
    for name, values in samples.items():
        median = statistics.median(values)
        out[name] = {
            "bytes": len(payloads[name]),
            "requests": len(values),
            "median_ms": round(median * 1000, 3),
            "p90_ms": round(float(np.percentile(values, 90)) * 1000, 3),
            "ratio_to_empty": round(median / base, 2),
        }
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    parent = Path(tempfile.mkdtemp(prefix="bench-latency-", dir="/dev/shm"))
    shm_dir = parent / "window"
    shm_dir.mkdir(mode=0o750)
    publisher = Publisher(shm_dir)
    try:
        artifact, report = train(pd.read_parquet(SAMPLE), options=Options(candidates=("ridge",)))
        model = install_model(shm_dir, artifact)
        table = sample_table(WINDOW_ROWS)
        generation = publisher.publish(table, metadata=window_metadata(table, model))
        _status(shm_dir, generation)
        env = {
            "SHM_DIR": str(shm_dir),
            "LOG_LEVEL": "WARNING",
            "WEB_ACCESS_LOG": "",
            # One window for the whole run: it must stay "fresh" for /readyz.
            "MAX_DATA_AGE_MS": str(24 * 3600 * 1000),
        }
        if args.workers:
            env["WEB_CONCURRENCY"] = str(args.workers)
        root = args.root.resolve()

        def build(fd: int) -> tuple[list[str], dict[str, str]]:
            argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"]
            return argv, {**env, "WEB_BIND": f"fd://{fd}", "PYTHONPATH": str(root)}

        server = Server("latency", build, parent, cwd=root)
        try:
            server.wait_http("/readyz", timeout=90)
            figures = _measure(server.port, bodies(), args.requests, args.rounds)
        finally:
            server.stop()
    finally:
        publisher.close()
        shutil.rmtree(parent, ignore_errors=True)
    return {
        "config": {
            "root": str(args.root),
            "requests_per_round": args.requests,
            "rounds": args.rounds,
            "workers": args.workers or "default",
            "window_rows": WINDOW_ROWS,
            "model_version": report["model_version"],
            "client": "http.client, one keep-alive connection, sequential, same machine",
            "load_average_1m": round(os.getloadavg()[0], 2),
        },
        "bodies": figures,
        "goals": {
            f"{rows} rows": {
                "max_ratio": goal,
                "ratio": figures[f"{rows} rows"]["ratio_to_empty"],
                "met": figures[f"{rows} rows"]["ratio_to_empty"] <= goal,
            }
            for rows, goal in GOALS.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--requests", type=int, default=None, help="per body per round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--workers", type=int, default=0, help="WEB_CONCURRENCY (default: Gunicorn's)"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="source tree to serve")
    args = parser.parse_args(argv)
    args.requests = args.requests or (30 if args.quick else 200)
    args.rounds = args.rounds or (2 if args.quick else 5)
    result = run(args)
    print(f"{'body':<10} {'bytes':>9} {'median ms':>10} {'p90 ms':>8} {'x {}':>6}")
    for name, row in result["bodies"].items():
        print(
            f"{name:<10} {row['bytes']:>9} {row['median_ms']:>10.3f} {row['p90_ms']:>8.3f}"
            f" {row['ratio_to_empty']:>6.2f}"
        )
    for name, goal in result["goals"].items():
        verdict = "met" if goal["met"] else "NOT met"
        print(f"goal {name} <= {goal['max_ratio']} x {{}}: {goal['ratio']:.2f} ({verdict})")
    name = "latency" if args.root == ROOT else "latency-other-tree"
    print(f"wrote {write_results(name, {'quick': args.quick, **result})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
