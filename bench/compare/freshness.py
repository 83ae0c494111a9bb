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

import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from kafka import KafkaProducer

from bench import _servers as servers
from bench._common import pct
from bench._kafka import new_topic
from bench._locust import Locust
from bench._paced import PacedRun
from bench._proc import Child, Server, child_env, get_json
from bench._series import END_NS, STEP_NS, event_record
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
                status, body = get_json(self._port, "/cache", timeout=30)
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
            p50_ms=pct(everywhere, 50),
            p90_ms=pct(everywhere, 90),
            p99_ms=pct(everywhere, 99),
            max_ms=pct(everywhere, 100),
            spread_p50_ms=pct(spread, 50),
            spread_p99_ms=pct(spread, 99),
            latencies_ms=[round(v, 1) for v in everywhere],
        )
    return result


class _Feed:
    """The events, numbered from 0 and one step apart in event time from ``END_NS``."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.next = 0
        self.record = functools.partial(event_record, first_ns=END_NS)

    def burst(self, count: int) -> None:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5, acks=1)
        try:
            for _ in range(count):
                producer.send(self.topic, self.record(self.next))
                self.next += 1
            producer.flush(30)
        finally:
            producer.close(10)

    def paced(self, rate: float, seconds: float) -> PacedRun:
        """The next ``rate * seconds`` events, connected and waiting for ``go()``."""
        count = int(rate * seconds)
        run = PacedRun(
            self.bootstrap, self.topic, self.record, first=self.next, count=count, rate=rate
        )
        self.next += count
        return run


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
    starters: dict[str, Callable[[], tuple[Server, Callable[[], None]]]] = {
        "ours": lambda: _start_ours(common, workdir, logdir, initial),
        "seed": lambda: (servers.seed(common, logdir), lambda: None),
        "private": lambda: (servers.private(common, logdir, workers=_WORKERS), lambda: None),
    }
    for design in designs:
        server, stop_extra = starters[design]()
        try:
            server.wait_http("/cache", timeout=180)
            workers = 1 if design == "seed" else _WORKERS
            servers.wait_workers(server, workers, ready=lambda body: body["rows"] >= feed.next)
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
    server: Server,
    feed: _Feed,
    workers: int,
    logdir: Path,
    phase: str,
    seconds: float,
    rate: float,
    users: int,
    shm_dir: Path | None,
) -> dict[str, Any]:
    first = feed.next
    load = None
    with feed.paced(rate, seconds) as run:
        try:
            if phase == "load":
                # Ramp-up (2 s), probe start (0.5 s), the events, the drain (1.5 s), 1 s spare.
                load = Locust(server.port, users, seconds + 5, logdir, f"fresh-{server.name}")
                time.sleep(2.0)
            with _Probe(server.port, shm_dir) as probe:
                time.sleep(0.5)
                run.go()
                sent = run.sent()
                time.sleep(1.5)
            control = (run.received() - sent) * 1000
        except BaseException:
            if load is not None:
                load.stop()
            raise
    sends = [(float(t), END_NS + (first + i) * STEP_NS) for i, t in enumerate(sent) if t == t]
    control = control[~np.isnan(control)]
    result = _latencies(sends, probe.samples, workers)
    result["kafka_alone"] = {
        "received": int(control.size),
        **{key: pct(control, q) for key, q in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100))},
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
    pub = r.get("published")
    return (
        f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  spread p99 {r['spread_p99_ms']} ms  "
        f"missing {r['missing']}/{r['events']}  workers {r['workers_seen']}/"
        f"{r['workers_expected']}  probe gap {r['probe_gap_ms']} ms"
        + (f"  in shm: p50 {pub['p50_ms']} p99 {pub['p99_ms']} ms" if pub else "")
        + f"  kafka alone: p50 {r['kafka_alone']['p50_ms']} p99 {r['kafka_alone']['p99_ms']} ms"
    )


def _ours_shm(workdir: Path) -> Path:
    return workdir / "freshness-shm"


def _published_rows(shm_dir: Path) -> int:
    snapshot = Reader(shm_dir).current() if (shm_dir / "generation.hint").exists() else None
    return 0 if snapshot is None else snapshot.table.num_rows


def _start_ours(
    common: Mapping[str, str], workdir: Path, logdir: Path, initial: int
) -> tuple[Server, Callable[[], None]]:
    """The daemon on the topic, then Gunicorn once the daemon published the backlog."""
    shm_dir = _ours_shm(workdir)
    env = child_env({**common, "SHM_DIR": str(shm_dir)})
    daemon = Child(
        "cache_daemon", [sys.executable, "-m", "cache_daemon"], env=env, log=logdir / "daemon.log"
    )
    try:
        daemon.wait_for(
            lambda: _published_rows(shm_dir) >= initial,
            timeout=120,
            what=f"{initial} rows published",
        )
        return servers.ours(shm_dir, logdir, workers=_WORKERS), daemon.stop
    except BaseException:
        daemon.stop()
        raise
