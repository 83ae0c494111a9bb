"""Measurement 4 of ``bench.compare``: event produced -> visible in every worker.

All designs read the same one-partition topic from its beginning (a few thousand events
first, so each starts with a window): ours = ``python -m cache_daemon`` publishing into shm
plus Gunicorn; the seed design (one process, its consumer thread); private caches (Gunicorn,
one consumer per worker). Then events are produced at a steady rate, each one step later in
event time than the last, first with the server idle and then under Locust load on
``/predict``.

Visibility is observed the way a client sees it: three threads poll ``GET /cache`` (5 ms
apart each), and each answer names the answering worker's pid and its newest event time. An event
is visible in a worker from the first answer of that worker that includes it (arrival time
of the answer), and visible everywhere at the latest of those over the workers that answered
during the phase. Under load a poll waits for a worker like any request, so that wait is part
of the figure. The polls' spacing per worker (``probe_gap_ms``) bounds the sampling error.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaProducer

from bench import _proc as servers
from bench._kafka import new_topic
from bench._locust import Locust
from bench.compare.series import END_NS, STEP_NS, event_record
from shm import Reader

__all__ = ["measure"]

WINDOW_ROWS = 10_000
_POLLERS = 3
_POLL_PAUSE_S = 0.005
# Gunicorn's default in gunicorn.conf.py, for ours and the private caches alike.
_WORKERS = len(os.sched_getaffinity(0)) + 1


class _Probe:
    """Threads polling ``/cache``: (arrival monotonic s, pid, newest event ns) per answer.

    With ``shm_dir`` (ours), one more thread reads the shm directory itself every 1 ms
    and records its samples under pid 0: when the daemon published, before any worker.
    """

    def __init__(self, port: int, shm_dir: Path | None = None) -> None:
        self._port = port
        self._stop = threading.Event()
        self.samples: list[tuple[float, int, int]] = []
        self.published: list[tuple[float, int, int]] = []
        self._threads = [threading.Thread(target=self._poll, daemon=True) for _ in range(_POLLERS)]
        if shm_dir is not None:
            self._threads.append(threading.Thread(target=self._watch, args=(shm_dir,), daemon=True))

    def __enter__(self) -> _Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _watch(self, shm_dir: Path) -> None:
        reader = Reader(shm_dir)
        generation = 0
        while not self._stop.is_set():
            snapshot = reader.current()
            if snapshot is not None and snapshot.generation != generation:
                generation = snapshot.generation
                times = snapshot.table.column("time")
                newest = int(times[len(times) - 1].value)
                self.published.append((time.monotonic(), 0, newest))
            time.sleep(0.001)

    def _poll(self) -> None:
        # A pause between polls keeps the probe from loading the machine it measures.
        while not self._stop.wait(_POLL_PAUSE_S):
            try:
                status, body = servers.get_json(self._port, "/cache", timeout=30)
            except OSError:
                continue
            now = time.monotonic()
            if status == 200 and isinstance(body, dict) and body.get("time_max"):
                newest = int(np.datetime64(body["time_max"].rstrip("Z"), "ns").astype(np.int64))
                self.samples.append((now, int(body["pid"]), newest))


def _latencies(
    sends: list[tuple[float, int]], samples: list[tuple[float, int, int]], expected: int
) -> dict[str, Any]:
    """Per event: when every worker seen in ``samples`` first answered with it."""
    by_pid: dict[int, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    for pid in {s[1] for s in samples}:
        mine = sorted((t, newest) for t, p, newest in samples if p == pid)
        arrival = np.array([t for t, _ in mine])
        by_pid[pid] = (arrival, np.maximum.accumulate(np.array([n for _, n in mine])))
    everywhere, spread, missing = [], [], 0
    for sent, event_ns in sends:
        seen = []
        for arrival, newest in by_pid.values():
            i = max(int(np.searchsorted(newest, event_ns)), int(np.searchsorted(arrival, sent)))
            if i >= len(arrival):
                break
            seen.append(float(arrival[i]))
        else:
            everywhere.append((max(seen) - sent) * 1000)
            spread.append((max(seen) - min(seen)) * 1000)
            continue
        missing += 1
    gaps = [float(np.median(np.diff(a))) * 1000 for a, _ in by_pid.values() if len(a) > 1]
    result: dict[str, Any] = {
        "events": len(sends),
        "missing": missing,
        "workers_expected": expected,
        "workers_seen": len(by_pid),
        "probe_gap_ms": round(max(gaps), 2) if gaps else None,
    }
    if everywhere:
        result.update(
            p50_ms=round(float(np.percentile(everywhere, 50)), 1),
            p90_ms=round(float(np.percentile(everywhere, 90)), 1),
            p99_ms=round(float(np.percentile(everywhere, 99)), 1),
            max_ms=round(max(everywhere), 1),
            spread_p50_ms=round(float(np.percentile(spread, 50)), 1),
            spread_p99_ms=round(float(np.percentile(spread, 99)), 1),
            latencies_ms=[round(v, 1) for v in everywhere],
        )
    return result


class _Feed:
    """The events, numbered from 0 and one step apart in event time from ``END_NS``."""

    first_ns = END_NS

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.next = 0

    def burst(self, count: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks=1)
        try:
            for _ in range(count):
                producer.send(self.topic, event_record(self.next, first_ns=self.first_ns))
                self.next += 1
            producer.flush(30)
        finally:
            producer.close(10)

    def paced(self, rate: float, seconds: float) -> _Paced:
        """A producer process ready to send ``rate`` events/s for ``seconds``."""
        count = int(rate * seconds)
        paced = _Paced(self, self.next, count, rate)
        self.next += count
        return paced


class _Child:
    """A ``bench.compare.producer`` process that printed ``ready``."""

    def __init__(self, *args: object) -> None:
        argv = [sys.executable, "-m", "bench.compare.producer", *map(str, args)]
        self._proc = subprocess.Popen(
            argv, cwd=servers.ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"{argv[3]} child of the freshness measurement did not start")

    def go(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write("go\n")
        self._proc.stdin.flush()

    def result(self) -> list[list[float]]:
        assert self._proc.stdout is not None
        try:
            rows: list[list[float]] = json.loads(self._proc.stdout.readline() or "[]")
            self._proc.wait(30)
        finally:
            self.close()
        return rows

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()


class _Paced:
    """The producer and the control consumer of one phase, both started and ready.

    :meth:`go` sends the events and returns (send time, event time ns) per event;
    :meth:`control` then gives the bare consumer's produce -> receive latencies (ms).
    """

    def __init__(self, feed: _Feed, first: int, count: int, rate: float) -> None:
        self._first_ns = feed.first_ns
        self._sent: dict[int, float] = {}
        where = (feed.bootstrap, feed.topic, first, count)
        self._control = _Child("consume", *where, count / rate + 30)
        try:
            self._producer = _Child("produce", *where, rate)
        except BaseException:
            self._control.close()
            raise

    def go(self) -> list[tuple[float, int]]:
        self._producer.go()
        sent = self._producer.result()
        self._sent = {int(i): t for i, t in sent}
        return [(t, self._first_ns + int(i) * STEP_NS) for i, t in sent]

    def control(self) -> list[float]:
        received = self._control.result()
        return [(t - self._sent[int(i)]) * 1000 for i, t in received if int(i) in self._sent]

    def close(self) -> None:
        self._producer.close()
        self._control.close()


def _wait_all_workers(
    server: servers.Server, workers: int, rows: int, timeout: float = 120.0
) -> None:
    """Until ``workers`` distinct pids answer ``/cache`` with at least ``rows`` rows."""
    caught_up: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(caught_up) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{server.name}: {len(caught_up)}/{workers} workers caught up")
        with contextlib.suppress(OSError):
            status, body = servers.get_json(server.port, "/cache")
            if status == 200 and isinstance(body, dict) and (body.get("rows") or 0) >= rows:
                caught_up.add(int(body["pid"]))
        time.sleep(0.01)


def measure(
    bootstrap: str,
    model_path: Path,
    workdir: Path,
    logdir: Path,
    *,
    seconds: float,
    rate: float,
    users: int,
    initial: int = 2_000,
    designs: Sequence[str] = ("ours", "seed", "private"),
) -> dict[str, Any]:
    """Freshness p50/p99 per design (``designs``, all three by default), idle and under
    ``users`` Locust users."""
    topic = new_topic(bootstrap, "bench-freshness")
    feed = _Feed(bootstrap, topic)
    common = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "MODEL_PATH": str(model_path),
        "WINDOW_ROWS": str(WINDOW_ROWS),
    }
    result: dict[str, Any] = {
        "rate_per_s": rate,
        "seconds": seconds,
        "users_under_load": users,
        "window_rows_at_start": initial,
        "designs": {},
    }
    feed.burst(initial)
    starters: dict[str, Callable[[], tuple[servers.Server, Callable[[], None]]]] = {
        "ours": lambda: _start_ours(common, workdir, logdir, initial),
        "seed": lambda: (servers.seed(common, logdir), lambda: None),
        "private": lambda: (
            servers.private(common, logdir, workers=_WORKERS),
            lambda: None,
        ),
    }
    for design in designs:
        server, stop_extra = starters[design]()
        try:
            server.wait(lambda status, _: status == 200, "/cache", timeout=180)
            workers = 1 if design == "seed" else _WORKERS
            _wait_all_workers(server, workers, feed.next)
            phases = {}
            shm_dir = _ours_shm(workdir) if design == "ours" else None
            for phase in ("idle", "load"):
                phases[phase] = _phase(
                    server, feed, workers, logdir, phase, seconds, rate, users, shm_dir
                )
                print(f"  {design:<8} {phase:<5} {_line(phases[phase])}", flush=True)
            result["designs"][design] = {"workers": workers, **phases}
        finally:
            server.stop()
            stop_extra()
    return result


def _phase(
    server: servers.Server,
    feed: _Feed,
    workers: int,
    logdir: Path,
    phase: str,
    seconds: float,
    rate: float,
    users: int,
    shm_dir: Path | None,
) -> dict[str, Any]:
    producer = feed.paced(rate, seconds)
    load = None
    try:
        if phase == "load":
            # Ramp-up (2 s), probe start (0.5 s), the events, the drain (1.5 s), 1 s to spare.
            load = Locust(server.port, users, seconds + 5, logdir, f"fresh-{server.name}")
            time.sleep(2.0)
        with _Probe(server.port, shm_dir) as probe:
            time.sleep(0.5)
            sends = producer.go()
            time.sleep(1.5)
        control = producer.control()
    except BaseException:
        if load is not None:
            load.stop()
        raise
    finally:
        producer.close()
    result = _latencies(sends, probe.samples, workers)
    result["kafka_alone"] = {
        "received": len(control),
        "p50_ms": round(float(np.percentile(control, 50)), 1) if control else None,
        "p99_ms": round(float(np.percentile(control, 99)), 1) if control else None,
        "max_ms": round(max(control), 1) if control else None,
    }
    if shm_dir is not None:
        published = _latencies(sends, probe.published, 1)
        result["published"] = {
            k: published.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "missing")
        }
    if load is not None:
        result["load"] = load.result()
    return result


def _line(r: Mapping[str, Any]) -> str:
    if "p50_ms" not in r:
        return f"no event seen by every worker ({r['missing']} missing)"
    return (
        f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  spread p99 {r['spread_p99_ms']} ms  "
        f"missing {r['missing']}/{r['events']}  workers {r['workers_seen']}/"
        f"{r['workers_expected']}  probe gap {r['probe_gap_ms']} ms"
        + _published(r)
        + f"  kafka alone: p50 {r['kafka_alone']['p50_ms']} p99 {r['kafka_alone']['p99_ms']} ms"
    )


def _published(r: Mapping[str, Any]) -> str:
    if "published" not in r:
        return ""
    pub = r["published"]
    return f"  in shm: p50 {pub['p50_ms']} p99 {pub['p99_ms']} ms"


def _ours_shm(workdir: Path) -> Path:
    return workdir / "freshness-shm"


def _start_ours(
    common: Mapping[str, str], workdir: Path, logdir: Path, initial: int
) -> tuple[servers.Server, Callable[[], None]]:
    """The daemon on the topic, then Gunicorn once the daemon published the backlog."""
    shm_dir = _ours_shm(workdir)
    env = servers.server_env({**common, "SHM_DIR": str(shm_dir)})
    daemon = servers.spawn_tied([sys.executable, "-m", "cache_daemon"], env, logdir / "daemon.log")

    def stop_daemon() -> None:
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()

    try:
        deadline = time.monotonic() + 120
        while True:
            snapshot = Reader(shm_dir).current() if (shm_dir / "generation.hint").exists() else None
            if snapshot is not None and snapshot.table.num_rows >= initial:
                break
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cache_daemon did not publish {initial} rows; see daemon.log")
            time.sleep(0.1)
        return servers.ours(shm_dir, logdir, workers=_WORKERS), stop_daemon
    except BaseException:
        stop_daemon()
        raise
