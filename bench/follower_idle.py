"""What each worker's follower costs in CPU, with the shm directory watched against polled.

``python -m bench.follower_idle [--quick] [--seconds S] [--rate R] [--rounds N]``

Serves a 10,000-row window with Gunicorn (``gunicorn.conf.py`` defaults, cores + 1 workers)
and no request at all, in two phases: *quiet* (nothing published; the daemon's status file
rewritten every second, as the daemon does) and *publishing* (a new generation ``R`` times a
second, 20 by default: the freshness benchmark's event rate). Each phase measures the CPU
time of the master and the workers over ``S`` seconds (15 by default), as a share of one
core. Two configurations in the same run: *watched* (the service: the follower sleeps on an
inotify watch, wakes at each publication and at least once a second) and *polled*
(``bench/baselines/gunicorn_polling.py``: the watch unavailable, so the follower wakes every
``WORKER_FOLLOW_INTERVAL_MS``, 20 ms, as everywhere before the watch). Writes
``bench/results/follower_idle.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench import _servers as servers
from bench._common import write_results
from bench._series import END_NS, STEP_NS, series_table, train_model
from bench._window import LiveWindow

__all__ = ["main", "measure"]

ROWS = 10_000
CONFIGS = {"watched": "gunicorn.conf.py", "polled": "bench/baselines/gunicorn_polling.py"}


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _share(pids: list[int], seconds: float) -> float:
    """CPU of ``pids`` over ``seconds``, in percent of one core."""
    before, started = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    return round(100 * (_cpu_seconds(pids) - before) / (time.monotonic() - started), 2)


def _serve(
    config: str, artifact: bytes, workdir: Path, seconds: float, rate: float
) -> dict[str, Any]:
    shm_dir = workdir / f"shm-{Path(config).stem}"
    logdir = workdir / "logs"
    end = [END_NS]
    publishing = threading.Event()

    def next_table() -> Any:
        end[0] += STEP_NS
        return series_table(ROWS, end_ns=end[0])

    with LiveWindow(shm_dir, artifact, series_table(ROWS), beat=1.0) as window:
        server = servers._gunicorn(
            "ours",
            ["-c", config, "webapp.wsgi:app"],
            {"SHM_DIR": str(shm_dir), "WEB_ACCESS_LOG": "", "WEB_TIMEOUT": "120"},
            logdir,
            None,
        )
        try:
            server.wait_http("/cache", timeout=120)
            time.sleep(2.0)  # the workers' warm-up done
            pids = server.pids()
            quiet = _share(pids, seconds)
            tables = [next_table() for _ in range(int(rate * seconds) + 1)]

            def publish() -> None:
                pause = 1.0 / rate
                for table in tables:
                    if not publishing.is_set():
                        return
                    window.publish(table)
                    time.sleep(pause)

            publishing.set()
            feeder = threading.Thread(target=publish, daemon=True)
            feeder.start()
            busy = _share(pids, seconds)
            publishing.clear()
            feeder.join(10)
            generations = window.generations
        finally:
            server.stop()
    return {
        "processes": len(pids),
        "quiet_pct_core": quiet,
        "publishing_pct_core": busy,
        "generations_published": generations,
    }


def measure(seconds: float, rate: float, rounds: int = 2) -> dict[str, Any]:
    """Both configurations, interleaved ``rounds`` times (watched, polled, watched, ...);
    ``quiet_watched_over_polled``: the ratio of their mean quiet shares."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-follower-", dir="/dev/shm"))
    try:
        (workdir / "logs").mkdir()
        artifact = train_model(workdir).read_bytes()
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONFIGS}
        for _ in range(rounds):
            for name, config in CONFIGS.items():
                runs[name].append(_serve(config, artifact, workdir, seconds, rate))
                print(f"  {name:<8} {runs[name][-1]}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mean = {name: sum(r["quiet_pct_core"] for r in rs) / len(rs) for name, rs in runs.items()}
    return {
        "rows": ROWS,
        "seconds": seconds,
        "rate_per_s": rate,
        "runs": runs,
        "quiet_watched_over_polled": round(mean["watched"] / mean["polled"], 3)
        if mean["polled"]
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.follower_idle", description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 s phases, one round")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    result = measure(args.seconds, args.rate, args.rounds)
    print(f"  quiet, watched / polled: {result['quiet_watched_over_polled']}")
    print(f"wrote {write_results('follower_idle', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
