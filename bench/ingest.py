"""Ingest benchmark: how fast the cache daemon turns records into published windows.

``python -m bench.ingest [--quick] [--series N] [--latency-series N [--latency-rate R]]``
prints a table and writes ``bench/results/ingest.json`` (with ``--series N``:
``ingest-series-N.json``; with ``--latency-series N``: ``ingest-latency-series-N.json``).

``--series N`` keys the records ``series-000000`` ... round robin over N keys (one series per
key, ``MAX_SERIES`` raised to N when needed), so the window holds N series; the latency part
then does not run (it measures a keyless stream).

* ``pipeline``: the daemon's own work (decode, window, coalesced publish through
  ``shm.Publisher``) fed from memory, no broker: its CPU ceiling.
* ``kafka_ingest``: a real broker (the project's local stack, loopback, free ports) holds N
  events on 3 partitions; ``python -m cache_daemon`` starts on an empty shm directory and the
  clock runs from its first ``restoring`` status until a ``shm.Reader`` sees a generation whose
  offsets cover all N records. Goal: >= 20,000 events/s.
* ``kafka_latency``: the daemon is live on a 1-partition topic; a producer process sends events
  at 1,000/s and this process polls ``Reader.current()`` every 0.5 ms; latency is produce call
  -> first generation whose ``time_max`` covers the event (CLOCK_MONOTONIC in both processes).
  Goal: p99 <= 100 ms, with the default ``PUBLISH_INTERVAL_MS``. A bare kafka-python
  consumer in a third process measures the Kafka part of that latency alone.
* ``kafka_latency_series`` (``--latency-series N``, alone): the same freshness with a window
  of N series: the daemon bootstraps them from an S3 snapshot (336 rows each, older than the
  stream), then the records, at ``--latency-rate`` per second (default 1,000), are keyed round
  robin over the N series, so that each publication rewrites the segments of the series its
  records changed.

The broker parts are skipped (and say so) when the stack cannot start (no Java or Maven).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from kafka import KafkaProducer

from bench._common import add_results_dir_option, pct, write_results
from bench._kafka import new_topic, start_stack
from bench._paced import PacedRun
from bench._proc import Child, child_env
from cache_daemon.bootstrap import snapshot_parquet
from cache_daemon.config import DaemonConfig
from cache_daemon.daemon import Daemon
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.sources import Health, Record
from contract.status import read_status
from objectstore import ObjectStore, S3Config
from scripts.errors import StackError
from shm import Publisher, Reader

# The daemon's default, so that the figures are those of a daemon started without settings.
_INTERVAL_MS: int = DaemonConfig.model_fields["publish_interval_ms"].default

T0_S = 960_163_200  # 2000-06-05T00:00:00Z
STEP_S = 1800
GOAL_RATE = 20_000
GOAL_P99_MS = 100.0
PRELOAD_ROWS = 336


def stamp(i: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0_S + i * STEP_S))


def record_value(i: int) -> bytes:
    return b'{"time": "%s", "demand_mw": %d.25}' % (stamp(i).encode(), 20_000 + i % 9_000)


def record_key(i: int, series: int) -> bytes | None:
    """The key of record ``i`` among ``series`` keys (round robin); ``None`` without series."""
    return b"series-%06d" % (i % series) if series else None


def _max_series(series: int) -> int:
    default: int = DaemonConfig.model_fields["max_series"].default
    return max(series, default)


# -- pipeline (no broker) -------------------------------------------------------------------


class _MemorySource:
    kind = "kafka"

    def __init__(self, values: list[bytes], keys: list[bytes | None], batch: int) -> None:
        pairs = enumerate(zip(values, keys, strict=True))
        self._records = [Record(0, i, v, k) for i, (v, k) in pairs]
        self._batch = batch
        self._next = 0

    def start(self, offsets: Any, *, resume_after_ns: int | None) -> None:
        self._next = 0

    def poll(self, timeout_s: float) -> list[Record]:
        out = self._records[self._next : self._next + self._batch]
        self._next += len(out)
        return out

    def positions(self) -> dict[int, int]:
        return {0: self._next}

    def health(self) -> Health:
        return Health(connected=True, caught_up=self._next >= len(self._records))

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        raise AssertionError(f"unexpected dead letter: {reason}")

    def flush(self, timeout_s: float) -> bool:
        return True

    def close(self) -> None:
        pass


def bench_pipeline(events: int, workdir: Path, series: int = 0) -> dict[str, Any]:
    values = [record_value(i) for i in range(events)]
    keys = [record_key(i, series) for i in range(events)]
    source = _MemorySource(values, keys, batch=5000)
    windows = SeriesWindows(
        ["demand_mw"], max_rows=4032, max_duration_ns=None, max_series=_max_series(series)
    )
    with Publisher(workdir / "pipeline") as publisher:
        daemon = Daemon(
            source=source,
            publisher=publisher,
            windows=windows,
            topic="bench",
            shm_dir=workdir / "pipeline",
            publish_interval_ms=_INTERVAL_MS,
        )
        source.start(None, resume_after_ns=None)
        start = time.perf_counter()
        while source.positions()[0] < events:
            daemon.step()
        elapsed = time.perf_counter() - start
        generations = publisher.generation
    return {
        "events": events,
        "series": windows.series_count,
        "seconds": round(elapsed, 3),
        "events_per_s": round(events / elapsed),
        "generations": generations,
    }


# -- broker parts ---------------------------------------------------------------------------


def _start_daemon(env: dict[str, str], shm_dir: Path, topic: str, **extra: str) -> Child:
    """``python -m cache_daemon`` on ``topic`` of the stack in ``env``, publishing into
    ``shm_dir``; its log beside that directory."""
    env = child_env({**env, **extra, "SHM_DIR": str(shm_dir), "KAFKA_TOPIC": topic})
    log = shm_dir.with_name(shm_dir.name + ".log")
    return Child("cache_daemon", [sys.executable, "-m", "cache_daemon"], env=env, log=log)


def bench_kafka_ingest(
    env: dict[str, str], events: int, workdir: Path, series: int = 0
) -> dict[str, Any]:
    """Backlog of ``events`` on 3 partitions, then start the daemon and time the catch-up.

    The rate is taken between the first generation a reader sees and the one that covers every
    offset, so interpreter start-up and the broker connection are not counted (they are
    reported as ``first_generation_after_s``).
    """
    servers = env["KAFKA_BOOTSTRAP_SERVERS"]
    partitions = 3
    topic = new_topic(servers, "bench-ingest", partitions=partitions)
    producer = KafkaProducer(bootstrap_servers=servers, linger_ms=20, batch_size=256 * 1024)
    for i in range(events):
        producer.send(topic, record_value(i), key=record_key(i, series), partition=i % partitions)
    producer.flush()
    producer.close()

    shm_dir = workdir / "kafka-ingest"
    spawned = time.perf_counter()
    daemon = _start_daemon(env, shm_dir, topic, MAX_SERIES=str(_max_series(series)))
    try:
        reader = Reader(shm_dir)
        first: tuple[float, int] | None = None
        cpu_first = cpu_used = float("nan")
        generations = 0
        last_generation = 0
        deadline = time.monotonic() + 120
        while True:
            snap = reader.current() if shm_dir.exists() else None
            now = time.perf_counter()
            if snap is not None and snap.generation != last_generation:
                last_generation = snap.generation
                generations += 1
                done = sum(json.loads(snap.metadata["offsets"]).values())
                if first is None:
                    first = (now, done)
                    cpu_first = _cpu_seconds(daemon.pid)
                if done >= events:
                    cpu_used = _cpu_seconds(daemon.pid) - cpu_first
                    break
            if daemon.proc.poll() is not None:
                raise RuntimeError(f"the daemon exited: {daemon.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the daemon did not publish every event within 120 s")
            time.sleep(0.002)
    finally:
        daemon.stop(grace=15)
    assert first is not None
    first_at, first_done = first
    rate = (events - first_done) / (now - first_at) if now > first_at else float("nan")
    return {
        "events": events,
        "partitions": partitions,
        "first_generation_after_s": round(first_at - spawned, 3),
        "events_in_first_generation": first_done,
        "catch_up_s": round(now - first_at, 3),
        "events_per_s": round(rate),
        # Load-independent: the daemon's CPU time (all its threads) per event while catching up.
        "daemon_cpu_us_per_event": round(cpu_used / (events - first_done) * 1e6, 1),
        "events_per_daemon_cpu_s": round((events - first_done) / cpu_used),
        "generations_seen": generations,
        "window_rows": snap.num_rows,
        "window_series": int(snap.metadata.get("series") or 0),
        "final_state": snap.metadata["state"],
        "goal_events_per_s": GOAL_RATE,
        "meets_goal": rate >= GOAL_RATE,
    }


def preload_snapshot(env: dict[str, str], topic: str, series: int) -> dict[str, str]:
    """Upload a bootstrap snapshot of ``series`` series of :data:`PRELOAD_ROWS` rows each,
    older than every record :func:`record_value` makes, with offset 0 of ``topic``'s one
    partition; return the daemon's variables that name it."""
    offsets = np.arange(-PRELOAD_ROWS, 0, dtype=np.int64)
    times = (T0_S + offsets * STEP_S) * 1_000_000_000
    ids = pa.array([f"series-{n:06d}" for n in range(series)], pa.string())
    table = pa.table(
        {
            "series_id": ids.take(np.repeat(np.arange(series), PRELOAD_ROWS)),
            "time": pa.array(np.tile(times, series), pa.timestamp("ns", tz="UTC")),
            "demand_mw": pa.array(np.full(series * PRELOAD_ROWS, 20_000.25)),
        }
    )
    bucket, key = "bench-latency", f"{topic}.parquet"
    store = ObjectStore(S3Config.from_env(env), timeout_s=60.0)
    store.ensure_bucket(bucket)
    store.put(bucket, key, snapshot_parquet(table, offsets={0: 0}, topic=topic))
    return {"SNAPSHOT_BUCKET": bucket, "SNAPSHOT_KEY": key, "MAX_SERIES": str(_max_series(series))}


def bench_kafka_latency(
    env: dict[str, str],
    rate: int,
    seconds: float,
    workdir: Path,
    *,
    interval_ms: int = _INTERVAL_MS,
    warmup_s: float = 3.0,
    series: int = 0,
    daemon_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The producer and a bare probe consumer in processes of their own (:class:`PacedRun`),
    the daemon in its own, the reader here: no process shares a GIL with another's hot loop.
    The first ``warmup_s`` of the stream (a freshly started broker JVM is still compiling)
    are not counted. ``series``: a window of that many series (see the module docstring);
    ``daemon_env``: more of the daemon's variables."""
    servers = env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = new_topic(servers, f"bench-latency-{interval_ms}")
    shm_dir = workdir / f"kafka-latency-{interval_ms}-{series}"
    extra = preload_snapshot(env, topic, series) if series else {}
    extra.update(daemon_env or {})
    daemon = _start_daemon(env, shm_dir, topic, PUBLISH_INTERVAL_MS=str(interval_ms), **extra)
    keys = functools.partial(record_key, series=series) if series else None
    warm = int(rate * warmup_s)
    total = warm + int(rate * seconds)
    seen = np.full(total, np.nan)
    try:
        with PacedRun(
            servers, topic, record_value, first=0, count=total, rate=rate, keys=keys
        ) as run:
            daemon.wait_for(
                lambda: (read_status(shm_dir) or {}).get("state") == "live",
                timeout=300,
                what="live",
                interval=0.05,
            )
            cpu_before = _cpu_seconds(daemon.pid)
            started = time.monotonic()
            run.go()
            reader = Reader(shm_dir)
            last_gen, covered = 0, 0
            finish_by = started + warmup_s + seconds + 10
            while covered < total and time.monotonic() < finish_by:
                snap = reader.current()
                now = time.monotonic()
                if snap is not None and snap.generation != last_gen:
                    last_gen = snap.generation
                    newest = snap.metadata.get("time_max")
                    if newest:
                        at = datetime.fromisoformat(newest).timestamp()
                        upto = min(round((at - T0_S) / STEP_S), total - 1)
                        if upto >= covered:
                            seen[covered : upto + 1] = now
                            covered = upto + 1
                time.sleep(0.0005)
            sent = run.sent()
            produced_for = time.monotonic() - started
            cpu_used = _cpu_seconds(daemon.pid) - cpu_before
            received = run.received()
            last = reader.current()
    finally:
        daemon.stop(grace=15)
    end_to_end = (seen - sent)[warm:] * 1000
    end_to_end = end_to_end[~np.isnan(end_to_end)]
    kafka_part = (received - sent)[warm:] * 1000
    kafka_part = kafka_part[~np.isnan(kafka_part)]
    p99 = pct(end_to_end, 99)
    return {
        "rate_per_s": rate,
        "window_series": last.series_count if last is not None else 0,
        "window_rows": last.num_rows if last is not None else 0,
        "segments": last.segments if last is not None and last.segmented else 0,
        "events": total - warm,
        "warmup_events": warm,
        "seen": int(end_to_end.size),
        "produced_for_s": round(produced_for, 2),
        "p50_ms": pct(end_to_end, 50),
        "p99_ms": p99,
        "max_ms": pct(end_to_end, 100),
        "kafka_only_p50_ms": pct(kafka_part, 50),
        "kafka_only_p99_ms": pct(kafka_part, 99),
        "daemon_cpu_percent": round(100 * cpu_used / produced_for, 1),
        "publish_interval_ms": interval_ms,
        "goal_p99_ms": GOAL_P99_MS,
        "meets_goal": p99 is not None and p99 <= GOAL_P99_MS and end_to_end.size == total - warm,
    }


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def _print(results: dict[str, Any]) -> None:
    print(f"{'measure':<34} {'value':>14}  goal")
    pipe = results.get("pipeline")
    if results["series"]:
        print(f"{'series (one per key)':<34} {results['series']:>14,}")
    if pipe:
        print(f"{'pipeline events/s (no broker)':<34} {pipe['events_per_s']:>14,}")
    ingest = results.get("kafka_ingest")
    if ingest:
        print(
            f"{'kafka ingest events/s':<34} {ingest['events_per_s']:>14,}  >= {GOAL_RATE:,}"
            f"  {'ok' if ingest['meets_goal'] else 'MISSED'}"
        )
    if ingest:
        print(
            f"{'kafka ingest events per CPU-second':<34} {ingest['events_per_daemon_cpu_s']:>14,}"
            f"  ({ingest['daemon_cpu_us_per_event']} us of daemon CPU per event)"
        )
    lat = results.get("kafka_latency") or results.get("kafka_latency_series")
    if lat:
        at = f"@ {lat['rate_per_s']:,} ev/s"
        if lat["window_series"] > 1:
            print(
                f"{'window series / segments':<34} {lat['window_series']:>8,} / {lat['segments']}"
            )
        print(f"{'latency p50 ms ' + at:<34} {lat['p50_ms']:>14}")
        print(
            f"{'latency p99 ms ' + at:<34} {lat['p99_ms']:>14}  <= {GOAL_P99_MS:g}"
            f"  {'ok' if lat['meets_goal'] else 'MISSED'}"
        )
        print(f"{'daemon CPU % ' + at:<34} {lat['daemon_cpu_percent']:>14}")
        kafka_only = f"p50 {lat['kafka_only_p50_ms']} / p99 {lat['kafka_only_p99_ms']}"
        print(f"{'bare consumer (Kafka part) ms':<34} {kafka_only:>14}")
    if results.get("skipped"):
        print(f"broker parts skipped: {results['skipped']}")
    start, end = results["load_average_at_start"], results["load_average_at_end"]
    print(f"load average (1 min) at start / end: {start:.1f} / {end:.1f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument(
        "--series", type=int, default=0, help="keyed records over this many keys (0: no keys)"
    )
    parser.add_argument(
        "--latency-series",
        type=int,
        default=0,
        help="only the freshness part, with a window of this many series (keyed records)",
    )
    parser.add_argument(
        "--latency-rate", type=int, default=1000, help="events/s of --latency-series"
    )
    parser.add_argument(
        "--series-per-segment", type=int, help="the daemon's SERIES_PER_SEGMENT (default its own)"
    )
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    if args.series < 0 or args.latency_series < 0:
        parser.error("--series and --latency-series must be >= 0")
    events = 30_000 if args.quick else 200_000
    seconds = 3.0 if args.quick else 15.0
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-", dir="/dev/shm"))
    command = "python -m bench.ingest" + (" --quick" if args.quick else "")
    command += f" --series {args.series}" if args.series else ""
    if args.latency_series:
        command += f" --latency-series {args.latency_series} --latency-rate {args.latency_rate}"
    if args.series_per_segment:
        command += f" --series-per-segment {args.series_per_segment}"
    # The machine may be shared: the load average says how much the figures are disturbed.
    results: dict[str, Any] = {
        "command": command,
        "series": args.series,
        "load_average_at_start": os.getloadavg()[0],
    }
    try:
        if not args.latency_series:
            results["pipeline"] = bench_pipeline(events, workdir, args.series)
        try:
            stack = start_stack(workdir / "stack")
        except StackError as exc:
            results["skipped"] = str(exc).splitlines()[0]
        else:
            try:
                env = stack.env()
                if args.latency_series:
                    daemon = {}
                    if args.series_per_segment:
                        daemon["SERIES_PER_SEGMENT"] = str(args.series_per_segment)
                    results["kafka_latency_series"] = bench_kafka_latency(
                        env,
                        args.latency_rate,
                        seconds,
                        workdir,
                        series=args.latency_series,
                        daemon_env=daemon,
                    )
                else:
                    results["kafka_ingest"] = bench_kafka_ingest(env, events, workdir, args.series)
                if not args.series and not args.latency_series:
                    results["kafka_latency"] = bench_kafka_latency(env, 1000, seconds, workdir)
            finally:
                stack.down()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["load_average_at_end"] = os.getloadavg()[0]
    _print(results)
    name = f"ingest-series-{args.series}" if args.series else "ingest"
    if args.latency_series:
        name = f"ingest-latency-series-{args.latency_series}"
        if args.series_per_segment:
            name += f"-{args.series_per_segment}"
    path = write_results(name, results, args.results_dir)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
