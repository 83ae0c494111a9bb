"""Ours against the seed report's design and the usual alternatives, same run, same machine.

``python -m bench.compare [--quick] [--only PART ...] [--bootstrap HOST:PORT] [--results-dir DIR]``
writes ``bench/results/compare.json`` and ``bench/results/compare-<part>.png`` (or into DIR).
Parts:

1. ``readpath``: cost per request to obtain the latest window, 1 k .. 10 M rows: ours
   (``shm.Reader.current()``), the seed design (deep copy under a lock), per-worker private
   caches, Redis (GET + unpickle; skipped with a message without ``redis-server``).
2. ``memory``: PSS of Gunicorn master + W workers (W = 2, 4, 8) serving a 1 GiB window, ours
   against a private copy per worker.
3. ``http``: ``/predict`` throughput and p50/p95/p99 (Locust headless, FastHttpUser) at 20
   users and at 100 (saturation), 50 / 1 M / 10 M rows, ours against the seed design, with
   Locust's own CPU share; and each server's throughput ceiling measured by wrk (a generator
   in C) with as many connections (skipped with a message without wrk: ``make bench-tools``).
4. ``freshness``: event produced -> visible in every worker, idle and under load, for ours,
   the seed design and private caches (needs Kafka: the project's local stack is started on
   free loopback ports, or ``--bootstrap`` names a running broker; skipped with a message when
   neither works).
5. ``ingest``: the figures of ``bench.ingest`` (``ingest.json`` in the results directory,
   which ``python -m bench`` writes earlier in the same run).
6. ``mix``: the load test as a user runs it, ``locust -f locustfiles`` with its default mix
   at 20 users against ours on the sample series, then cached-only right after it
   (``bench.compare.mix``), once the broker is down.

``--quick``: tiny sizes and short phases, no broker unless ``--bootstrap`` is given (the
smoke test of ``make test``). Every server runs on 127.0.0.1 and is stopped before the
command returns; the designs all use the same model (``bench/_series.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench._common import add_results_dir_option, write_results
from bench._kafka import new_topic, start_stack
from bench._series import train_model
from bench.compare import freshness, goals, http, memory, mix, readpath
from bench.compare.plots import plot_all
from bench.compare.report import goals_table, markdown
from scripts.errors import StackError

__all__ = ["FULL", "PARTS", "QUICK", "Plan", "main"]

PARTS = ("readpath", "memory", "http", "freshness", "ingest", "mix")
GIB = 1024**3


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one run."""

    read_sizes: list[int]
    memory_bytes: int
    memory_workers: list[int]
    http_sizes: list[int]
    http_users: list[int]
    http_seconds: float
    http_repeats: int
    fresh_seconds: float
    fresh_rate: float = 20.0
    fresh_users: int = 20
    wrk_seconds: float = 5.0
    mix_seconds: float = 20.0
    mix_users: int = 20
    parts: list[str] = field(default_factory=lambda: list(PARTS))


FULL = Plan(
    read_sizes=[1_000, 10_000, 100_000, 1_000_000, 10_000_000],
    memory_bytes=GIB,
    memory_workers=[2, 4, 8],
    http_sizes=[50, 1_000_000, 10_000_000],
    http_users=[20, 100],
    http_seconds=6,
    http_repeats=2,
    # 600 events per phase: with 200, p99 was the second-worst event, and one stall of the
    # machine (a few consecutive events) decided the comparison of two phases.
    fresh_seconds=30,
)
QUICK = Plan(
    read_sizes=[1_000, 100_000],
    memory_bytes=64 * 1024**2,
    memory_workers=[2],
    http_sizes=[50],
    http_users=[20],
    http_seconds=4,  # Locust spends its first second spawning users; 2 s left too little
    http_repeats=1,
    fresh_seconds=3,
    wrk_seconds=2,
    mix_seconds=4,
)


def _ingest(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "ingest.json"
    if not path.exists():
        return {"skipped": f"{path} not found: `python -m bench ingest` writes it"}
    data = json.loads(path.read_text())
    age_s = time.time() - path.stat().st_mtime
    summary: dict[str, Any] = {"source": str(path.name), "age_s": round(age_s)}
    for key in ("pipeline", "kafka_ingest", "kafka_latency", "skipped"):
        if key in data:
            summary[key] = data[key]
    return summary


def _run(
    plan: Plan, bootstrap: str | None, quick: bool, workdir: Path, results_dir: Path
) -> dict[str, Any]:
    logdir = workdir / "logs"
    logdir.mkdir()
    model = train_model(workdir)
    results: dict[str, Any] = {}
    clock = time.monotonic()

    def part(title: str) -> None:
        print(f"-- {title} (at {time.monotonic() - clock:.0f} s)", flush=True)

    if "readpath" in plan.parts:
        part("read path")
        results["readpath"] = readpath.measure(plan.read_sizes, workdir, quick=quick)
    if "memory" in plan.parts:
        part("memory (PSS)")
        results["memory"] = memory.measure(
            plan.memory_bytes, plan.memory_workers, model, workdir, logdir
        )
    stack = None
    if bootstrap is None and not quick and {"http", "freshness"} & set(plan.parts):
        part("starting the local Kafka stack")
        try:
            stack = start_stack(workdir / "stack")
            bootstrap = stack.bootstrap_servers
        except StackError as exc:
            results["broker"] = f"no broker: {str(exc).splitlines()[0]}"
            print(f"  {results['broker']}", flush=True)
    try:
        if "http" in plan.parts:
            part("HTTP /predict")
            kafka: dict[str, str] = {}
            if bootstrap:
                kafka = {
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "KAFKA_TOPIC": new_topic(bootstrap, "bench-idle"),
                }
            results["http"] = http.measure(
                plan.http_sizes,
                plan.http_users,
                plan.http_seconds,
                model,
                workdir,
                logdir,
                kafka,
                repeats=plan.http_repeats,
                wrk_seconds=plan.wrk_seconds,
            )
        if "freshness" in plan.parts:
            part("freshness")
            if bootstrap is None:
                reason = results.get("broker") or "no broker in --quick (pass --bootstrap)"
                results["freshness"] = {"skipped": reason}
                print(f"  freshness skipped: {reason}", flush=True)
            else:
                results["freshness"] = freshness.measure(
                    bootstrap,
                    model,
                    workdir,
                    logdir,
                    seconds=plan.fresh_seconds,
                    rate=plan.fresh_rate,
                    users=plan.fresh_users,
                )
    finally:
        if stack is not None:
            stack.down()
    if "mix" in plan.parts:
        part("load-test mix, then cached-only")
        results["mix"] = mix.measure(plan.mix_seconds, logdir, workdir, users=plan.mix_users)
    if "ingest" in plan.parts:
        results["ingest"] = _ingest(results_dir)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--bootstrap", help="use this Kafka broker (host:port) instead")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the last results as Markdown tables and exit (runs nothing)",
    )
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    results_dir: Path = args.results_dir
    if args.markdown:
        print(markdown(json.loads((results_dir / "compare.json").read_text())))
        return 0
    plan = QUICK if args.quick else FULL
    if args.only:
        plan = Plan(**{**asdict(plan), "parts": list(args.only)})
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="bench-compare-", dir="/dev/shm"))
    load_start = os.getloadavg()
    try:
        results = _run(plan, args.bootstrap, args.quick, workdir, results_dir)
    except BaseException:
        kept = results_dir / "compare-logs"
        shutil.rmtree(kept, ignore_errors=True)
        if (workdir / "logs").exists():
            shutil.copytree(workdir / "logs", kept)
            print(f"server logs kept in {kept}", file=sys.stderr)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    command = "python -m bench.compare" + (" " + " ".join(argv) if argv else "")
    payload = {
        "command": command.strip(),
        "quick": args.quick,
        "plan": asdict(plan),
        "seconds": round(time.time() - started, 1),
        "load_average": {"start": load_start, "end": os.getloadavg()},
        **results,
        "goals": goals.check(results),
    }
    path = write_results("compare", payload, results_dir)
    plots = plot_all(payload, results_dir)
    print("\n".join(goals_table(payload)))
    images = "".join(f", {p.name}" for p in plots)
    print(f"wrote {path}{images} in {payload['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
