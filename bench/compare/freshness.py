"""Measurement 4 of ``bench.compare``: event produced -> visible in every worker.

All designs read the same one-partition topic from its beginning (a few thousand events
first, so each starts with a window): ours = ``python -m cache_daemon`` publishing into shm
plus Gunicorn; the seed design (one process, its consumer thread); private caches (Gunicorn,
one consumer per worker). Then events are produced at a steady rate, each one step later in
event time than the last, first with the server idle and then under Locust load on
``/predict``.

Visibility is observed the way a client sees it: one thread per server process polls
``GET /cache`` on a kept-alive connection that reached that process, and each
answer names the answering worker's pid and its newest event time. An event is visible in a
worker from the first answer of that worker that includes it (arrival time of the answer),
and visible everywhere at the latest of those over the workers that answered during the
phase. Under load a poll waits in its worker behind Locust's requests like any request, so
that wait is part of the figure. The polls' spacing per worker (``probe_gap_ms``) bounds the
sampling error. Every design is asked equally often: one slot every 20 ms, the slots dealt
in turn to its processes (each of ours' workers every 60 ms where there are three); a slot
missed behind a slower answer is skipped, so a design that answers slowly (under load) is
asked less often. The probe's own load slows Kafka and the server it measures, and asking
each of three workers every 20 ms gave ours' phases three times the seed's load (the bare
consumer's idle p50 4.2-4.8 ms against 3.7-4.0 ms without the probe, p99 13.8-15.5 against
10.4-11.6; in the seed's phase 3.8 against 3.4 and 8.8 against 6.3). Answers to requests
sent before the phase's half second of lead-in are left out (the pollers run while Locust
and the shm watch start).

Why per process and kept alive: with new connections from three pollers (as before), the
seed design's one process was asked every 1.3 ms and each of ours' three workers every
6-8 ms, so ours' figure carried the largest of three 7 ms sampling errors against one 1.3 ms
error; under load the busiest worker, which rarely wins the race to accept a new
connection, was asked only every 15-25 ms (p99 over 100 ms), although the requests on its
kept-alive connections were answered from the new generation all along. The sync workers of
the private caches close every connection after one answer; their pollers reconnect, each
answer coming from whichever worker accepts.

Exact instants (``exact``, what the goals judge). Each design also says, without sampling,
from which instant every one of its processes serves an event: the baselines stamp each
frame they swap in under their lock (``GET /swaps``: CLOCK_MONOTONIC, shared by every process
of the machine); ours serves from the shm directory, whose newest generation every worker
reads at each request (the hint, a memory load), so an event is visible in all workers from
the rename of the first generation holding it, taken here as the moment a process of its
own was woken by that rename, inotify naming the generation's file (``bench._shm_watch``:
late by its wake-up, never early; when it was woken by an earlier rename, the moment its
reader had the generation). "Visible in every worker" is the latest instant over the
processes. The probe checks each one: an answer to a request
sent after an event's instant that does not show the event is a violation, and a run with
one is judged on the probe's figures instead.

Side by side (``side_by_side``): after each design's phases alone, ours and the seed design
run at once on the same topic, every process at nice 0 (ours' daemon too), and one idle
phase feeds both the same events, with one bare consumer and each design's probe and exact
instants; ``paired`` compares them event by event.
The phases alone run one after the other, and Kafka's own latency moves between them by
as much as either design adds to it (the bare consumer's idle p99 was 14-29 ms in ours' phase
and 8-19 ms in the seed's, docs/benchmarks.md); the comparison at idle is judged in both.

Per worker, each phase also reports its connections on the port (Locust's land where the
kernel and the workers' accept loops put them), the probe's round trips and event -> that
worker's first answer showing it (``per_worker``).
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from kafka import KafkaProducer

from bench import _servers as servers
from bench._common import pct
from bench._kafka import new_topic
from bench._locust import Locust
from bench._paced import PacedRun
from bench._proc import Child, Server, child_env
from bench._series import END_NS, STEP_NS, event_record
from bench._shm_watch import ShmWatch
from shm import Reader

__all__ = ["measure"]

# One answer of the probe: arrival (monotonic s), pid, newest event ns, send time.
Sample = tuple[float, int, int, float]
# An instant (monotonic s) from which every request of one process shows every event up to
# the newest (event ns): a frame swapped in (the baselines' ``/swaps``), a generation in shm.
Visible = tuple[float, int]

WINDOW_ROWS = 10_000
# A poll of the design every 20 ms, spread over its processes. The goals judge the exact
# instants, which the probe only checks; its load slows Kafka itself (docs/benchmarks.md).
_DESIGN_GAP_S = 0.02
# Gunicorn's default in gunicorn.conf.py, for ours and the private caches alike.
_WORKERS = len(os.sched_getaffinity(0)) + 1


class _Probe:
    """Pollers of ``GET /cache``, one per server process, each on a kept-alive connection
    of its own: (arrival monotonic s, pid, newest event ns) per answer in ``samples``, and
    each answer's round trip in ``round_trips`` (pid, ms, send time).

    :meth:`connect` opens connections until one reaches each of ``processes`` pids (the
    kernel hands a new connection to whichever worker accepts first); a connection then
    stays with its worker, so every process is asked equally often: poller ``i`` on the slots
    ``i``, ``i + processes``, ... of a clock ticking every ``_DESIGN_GAP_S``, so that the
    design is asked once a tick whatever its number of processes (a slot missed behind a
    slower answer is skipped). A poller whose connection fails (a worker recycled) opens a
    new one. :meth:`keep_from` drops the answers of a lead-in.

    With ``shm_dir`` (ours), a process of its own (:class:`bench._shm_watch.ShmWatch`)
    records when each generation appeared in the shm directory, before any worker answered
    with it (``published``, under pid 0).
    """

    def __init__(self, port: int, processes: int, shm_dir: Path | None = None) -> None:
        self._port = port
        self._processes = processes
        self._shm_dir = shm_dir
        self._stop = threading.Event()
        self._conns: list[http.client.HTTPConnection] = []
        self.samples: list[Sample] = []
        self.round_trips: list[tuple[int, float, float]] = []
        self.published: list[Sample] = []
        self._threads: list[threading.Thread] = []
        self._shm_watch: ShmWatch | None = None

    def connect(self, timeout: float = 60.0) -> None:
        """One kept-alive connection per process (``TimeoutError`` if some process never
        accepted one within ``timeout`` s)."""
        by_pid: dict[int, http.client.HTTPConnection] = {}
        deadline = time.monotonic() + timeout
        while len(by_pid) < self._processes:
            if time.monotonic() > deadline:
                for kept in by_pid.values():
                    kept.close()
                raise TimeoutError(f"/cache answered from {len(by_pid)} of {self._processes}")
            conn = self._new_connection()
            try:
                pid = self._ask(conn)[2]
            except (OSError, http.client.HTTPException, ValueError):
                conn.close()
                time.sleep(0.01)
                continue
            if pid in by_pid:
                conn.close()
            else:
                by_pid[pid] = conn
        self._conns = list(by_pid.values())

    def __enter__(self) -> _Probe:
        if not self._conns:
            self.connect()
        pause = _DESIGN_GAP_S * len(self._conns)
        start = time.monotonic() + _DESIGN_GAP_S
        self._threads = [
            threading.Thread(
                target=self._poll, args=(conn, start + i * _DESIGN_GAP_S, pause), daemon=True
            )
            for i, conn in enumerate(self._conns)
        ]
        # The pollers first: the watch's process takes seconds to start on a loaded machine,
        # and a connection idle that long was closed by Gunicorn's keep-alive (5 s).
        for thread in self._threads:
            thread.start()
        if self._shm_dir is not None:
            try:
                self._shm_watch = ShmWatch(self._shm_dir).__enter__()
            except BaseException:
                self.__exit__()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
        if self._shm_watch is not None:
            self._shm_watch.__exit__(*exc)
            # No send time: the watch is woken by the rename, not asking at intervals.
            self.published = [(at, 0, newest, at) for at, newest in self._shm_watch.seen]
        self.close()

    def close(self) -> None:
        """Close the connections :meth:`connect` opened (the pollers close their own)."""
        for conn in self._conns:
            conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self._port, timeout=30)

    def _ask(self, conn: http.client.HTTPConnection) -> tuple[float, float, int, int | None]:
        """One ``GET /cache``: (send, arrival: monotonic s; pid; newest event ns or None).

        The send time is taken before the request is written and the arrival as soon as the
        body is read: a thread switch between either and the socket only widens the
        interval, so a request stamped as sent after an instant really was (what the exact
        instants' check relies on)."""
        sent = time.monotonic()
        conn.request("GET", "/cache")
        response = conn.getresponse()
        raw = response.read()
        arrival = time.monotonic()
        body = json.loads(raw)
        if not isinstance(body, dict):
            return sent, arrival, 0, None
        pid = int(body.get("pid", 0))
        if response.status != 200 or not body.get("time_max"):
            return sent, arrival, pid, None
        newest = int(np.datetime64(body["time_max"].rstrip("Z"), "ns").astype(np.int64))
        return sent, arrival, pid, newest

    def _poll(self, conn: http.client.HTTPConnection, due: float, pause: float) -> None:
        # Polls on fixed slots (``due``, then every ``pause``), so that the pollers stay
        # staggered whatever their round trips; a slot missed behind a slow answer is
        # skipped, not made up. The gaps keep the probe from loading the machine it measures.
        try:
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                try:
                    sent, arrival, pid, newest = self._ask(conn)
                except (OSError, http.client.HTTPException, ValueError):
                    conn.close()
                    conn = self._new_connection()
                    arrival = time.monotonic()
                else:
                    self.round_trips.append((pid, (arrival - sent) * 1000, sent))
                    if newest is not None:
                        self.samples.append((arrival, pid, newest, sent))
                due += pause * max(1, math.ceil((arrival - due) / pause))
        finally:
            conn.close()

    def keep_from(self, start: float) -> None:
        """Forget the answers to requests sent before ``start`` (monotonic s): those of the
        pollers' lead-in, while Locust and the shm watch started."""
        self.samples = [s for s in self.samples if s[3] >= start]
        self.round_trips = [r for r in self.round_trips if r[2] >= start]


def _first_answers(
    sends: list[tuple[float, int]], samples: list[Sample]
) -> dict[int, list[float | None]]:
    """Per pid in ``samples``, per event: the arrival of that worker's first answer sent
    after the event and showing it (None if it never answered so)."""
    return {
        pid: [firsts for firsts, _ in bounds] for pid, bounds in _bounds(sends, samples).items()
    }


def _bounds(
    sends: list[tuple[float, int]], samples: list[Sample]
) -> dict[int, list[tuple[float | None, float]]]:
    """Per pid in ``samples``, per event: (the arrival of that worker's first answer sent
    after the event and showing it, or None; the send time of its last answer that did not
    show it, or -inf). The event became visible in that worker between the two: a request
    sent at the second was read before it was there."""
    result: dict[int, list[tuple[float | None, float]]] = {}
    for pid in sorted({s[1] for s in samples}):
        mine = sorted((t, newest, asked) for t, p, newest, asked in samples if p == pid)
        arrival = np.array([t for t, _, _ in mine])
        newest = np.maximum.accumulate(np.array([n for _, n, _ in mine]))
        asked = np.array([a for _, _, a in mine])
        bounds: list[tuple[float | None, float]] = []
        for sent, event_ns in sends:
            shows = int(np.searchsorted(newest, event_ns))
            i = max(shows, int(np.searchsorted(arrival, sent)))
            first = float(arrival[i]) if i < len(arrival) else None
            bounds.append((first, float(asked[shows - 1]) if shows else -np.inf))
        result[pid] = bounds
    return result


def _latencies(
    sends: list[tuple[float, int]], samples: list[Sample], expected: int
) -> dict[str, Any]:
    """Per event: when every worker seen in ``samples`` first answered with it (the probe's
    figure, judged when a run has no exact one), and ``not_before``: the latest send time
    of an answer that did not show it yet, from any worker (0 when none was sent after the
    event).

    The true moment the event was visible in every worker lies between the two. The first
    is late by the probe's sampling: about half a probe gap for one process, about 3/4 of
    it for the latest of three; the second is early by about as much. Both are reported so
    that designs with different numbers of processes can be compared on either bound."""
    seen = _bounds(sends, samples)
    everywhere, spread, floor, missing = [], [], [], 0
    for i, (sent, _) in enumerate(sends):
        arrivals = [bounds[i][0] for bounds in seen.values()]
        if not arrivals or None in arrivals:
            missing += 1
            continue
        known = [a for a in arrivals if a is not None]
        everywhere.append((max(known) - sent) * 1000)
        spread.append((max(known) - min(known)) * 1000)
        floor.append(max(0.0, max(bounds[i][1] for bounds in seen.values()) - sent) * 1000)
    gaps = []
    for pid in seen:
        arrival = np.sort(np.array([t for t, p, *_ in samples if p == pid]))
        if len(arrival) > 1:
            gaps.append(float(np.median(np.diff(arrival))) * 1000)
    result: dict[str, Any] = {
        "events": len(sends),
        "missing": missing,
        "workers_expected": expected,
        "workers_seen": len(seen),
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
            not_before_p50_ms=pct(floor, 50),
            not_before_p99_ms=pct(floor, 99),
            latencies_ms=[round(v, 1) for v in everywhere],
        )
    return result


def _visible_from(sends: Sequence[tuple[float, int]], log: Sequence[Visible]) -> list[float | None]:
    """Per event of ``sends``: the first instant of ``log`` from which the process showed it
    (None: never within the log)."""
    entries = sorted(log)
    instants = np.array([t for t, _ in entries], dtype=np.float64)
    newest = np.maximum.accumulate(np.array([n for _, n in entries], dtype=np.int64))
    found = np.searchsorted(newest, np.array([e for _, e in sends], dtype=np.int64))
    return [float(instants[i]) if i < len(instants) else None for i in found]


def _exact(
    sends: Sequence[tuple[float, int]],
    logs: Mapping[int, Sequence[Visible]],
    expected: int,
    samples: Sequence[Sample],
) -> dict[str, Any]:
    """Event produced -> the instant from which every process showed it: the latest over the
    ``expected`` processes of ``logs`` (their own record of when they changed what they
    serve, so no probe sampling is in it).

    The probe checks every instant: per event, every probe answer to a request sent after
    the event's instant must show the event; ``checked`` counts those (event, answer) pairs
    and ``violations`` the ones that did not show it (any would mean an instant too early).
    An event some process never showed, or a process missing from ``logs``, counts as
    ``missing``."""
    per_process = [_visible_from(sends, log) for log in logs.values()]
    latencies: list[float] = []
    instants: list[float | None] = []
    for i, (sent, _) in enumerate(sends):
        found = [instants_of[i] for instants_of in per_process]
        if len(per_process) < expected or not found or None in found:
            instants.append(None)
            continue
        latest = max(f for f in found if f is not None)
        instants.append(latest)
        latencies.append((latest - sent) * 1000)
    asked = np.array([s[3] for s in samples], dtype=np.float64)
    shown = np.array([s[2] for s in samples], dtype=np.int64)
    violations = checked = 0
    for at, (_, event_ns) in zip(instants, sends, strict=True):
        if at is None:
            continue
        after = asked > at
        checked += int(after.sum())
        violations += int((shown[after] < event_ns).sum())
    result: dict[str, Any] = {
        "missing": sum(1 for i in instants if i is None),
        "violations": violations,
        "checked": checked,
    }
    if latencies:
        result.update(
            p50_ms=pct(latencies, 50),
            p90_ms=pct(latencies, 90),
            p99_ms=pct(latencies, 99),
            max_ms=pct(latencies, 100),
            latencies_ms=[
                None if at is None else round((at - sent) * 1000, 1)
                for at, (sent, _) in zip(instants, sends, strict=True)
            ],
        )
    return result


def _swap_logs(port: int, processes: int, timeout: float = 30.0) -> dict[int, list[Visible]]:
    """Every process's ``GET /swaps`` (a baseline's record of its swaps), asking on new
    connections until each of ``processes`` pids answered or ``timeout`` s passed."""
    logs: dict[int, list[Visible]] = {}
    deadline = time.monotonic() + timeout
    while len(logs) < processes and time.monotonic() < deadline:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", "/swaps")
            body = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException, ValueError):
            time.sleep(0.01)
            continue
        finally:
            conn.close()
        logs[int(body["pid"])] = [(mono / 1e9, int(newest)) for mono, newest in body["swaps"]]
    return logs


def _per_worker(
    sends: list[tuple[float, int]], probe: _Probe, counts: list[dict[int, int]]
) -> dict[str, dict[str, Any]]:
    """Per worker: its connections on the server's port (median of the per-second counts,
    the probe's one included), the probe's answers from it and their round trips (ms), and
    event -> its first answer showing the event (ms)."""
    result: dict[str, dict[str, Any]] = {}
    for pid, firsts in _first_answers(sends, probe.samples).items():
        delays = [(f - sent) * 1000 for f, (sent, _) in zip(firsts, sends, strict=True) if f]
        trips = [ms for p, ms, _ in probe.round_trips if p == pid]
        result[str(pid)] = {
            "connections": float(np.median([c.get(pid, 0) for c in counts])) if counts else None,
            "answers": len(trips),
            "round_trip_p50_ms": pct(trips, 50),
            "round_trip_p99_ms": pct(trips, 99),
            "visible_p50_ms": pct(delays, 50),
            "visible_p99_ms": pct(delays, 99),
        }
    return result


def _connections(server: Server) -> dict[int, int]:
    """Established TCP connections on the server's port, per process holding them."""
    counts: dict[int, int] = {}
    for pid in server.pids():
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.Error:
            continue
        mine = sum(
            1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
        )
        if mine:
            counts[pid] = mine
    return counts


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


@dataclass(frozen=True)
class _Target:
    """One design's server in a phase: its processes, and ours' shm directory."""

    design: str
    server: Server
    workers: int
    shm_dir: Path | None = None


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
    side_by_side: bool = True,
) -> dict[str, Any]:
    """Freshness p50/p99 per design (``designs``, all three by default), idle and under
    ``users`` Locust users, each design alone; then, with ``side_by_side`` and both ours and
    the seed design among ``designs``, those two idle at once on the same events
    (``side_by_side``: each one's figures, and the comparison event by event)."""
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
    for design in designs:
        with _started(design, common, workdir, logdir, feed) as target:
            phases = {}
            for phase in ("idle", "load"):
                phases[phase] = _phase([target], feed, logdir, phase, seconds, rate, users)[design]
                print(f"  {design:<8} {phase:<5} {_line(phases[phase])}", flush=True)
            result["designs"][design] = {"workers": target.workers, **phases}
    if side_by_side and {"ours", "seed"} <= set(designs):
        # Every process at the same nice value: ours' daemon's default (-5) would hand it
        # the CPU ahead of the seed design's process.
        level = {**common, "DAEMON_NICE": "0"}
        with contextlib.ExitStack() as stack:
            targets = [
                stack.enter_context(_started(d, level, workdir, logdir, feed, "side-by-side"))
                for d in ("ours", "seed")
            ]
            both = _phase(targets, feed, logdir, "idle", seconds, rate, users)
        for design, figures in both.items():
            print(f"  {design:<8} idle, side by side: {_line(figures)}", flush=True)
        both["paired"] = _paired(both["ours"]["exact"], both["seed"]["exact"])
        result["side_by_side"] = {"idle": both}
    return result


@contextlib.contextmanager
def _started(
    design: str,
    common: Mapping[str, str],
    workdir: Path,
    logdir: Path,
    feed: _Feed,
    label: str = "alone",
) -> Iterator[_Target]:
    """``design``'s server on the topic, every process of it serving every event produced so
    far; stopped on exit. ``label`` names ours' shm directory (a daemon of its own each time)."""
    stop_extra: Callable[[], None] | None = None
    shm_dir = None
    rows = min(feed.next, WINDOW_ROWS)  # the window keeps the newest WINDOW_ROWS events
    if design == "ours":
        shm_dir = workdir / f"freshness-shm-{label}"
        server, stop_extra = _start_ours(common, shm_dir, logdir, rows)
    elif design == "seed":
        server = servers.seed(common, logdir)
    else:
        server = servers.private(common, logdir, workers=_WORKERS)
    try:
        server.wait_http("/cache", timeout=180)
        workers = 1 if design == "seed" else _WORKERS
        servers.wait_workers(server, workers, ready=lambda body: body["rows"] >= rows)
        yield _Target(design, server, workers, shm_dir)
    finally:
        server.stop()
        if stop_extra is not None:
            stop_extra()


def _phase(
    targets: Sequence[_Target],
    feed: _Feed,
    logdir: Path,
    phase: str,
    seconds: float,
    rate: float,
    users: int,
) -> dict[str, dict[str, Any]]:
    """One phase of ``rate * seconds`` events, every design of ``targets`` probed at once
    (under ``load``, the one design of ``targets`` loaded by Locust): each design's figures,
    all against the same events and the same bare consumer."""
    if phase == "load" and len(targets) != 1:
        raise ValueError("Locust loads one design at a time")
    first = feed.next
    load = None
    counts: dict[str, list[dict[int, int]]] = {t.design: [] for t in targets}
    with feed.paced(rate, seconds) as run, contextlib.ExitStack() as probing:
        probes = [_Probe(t.server.port, t.workers, t.shm_dir) for t in targets]
        for probe in probes:
            probing.callback(probe.close)
        try:
            # The probe's connections first, one per worker, before Locust's. Its pollers run
            # from then on: a connection left idle while Locust starts (4-11 s) was closed by
            # Gunicorn's keep-alive (5 s) and opened again on whichever worker accepted, at
            # times the same one for two pollers.
            for probe in probes:
                probe.connect()
            with contextlib.ExitStack() as polling:
                for probe in probes:
                    polling.enter_context(probe)
                if phase == "load":
                    # Until every user runs (Locust can take seconds to start and spawn on a
                    # loaded machine, and the phase then passed unloaded), one second more,
                    # 0.5 s, the events, the drain (1.5 s); Locust's time limit counts from
                    # its spawning, which takes 1 s on an idle machine: 5 s spare for a slow one.
                    server = targets[0].server
                    load = Locust(server.port, users, seconds + 8, logdir, f"fresh-{server.name}")
                    load.wait_running()
                    time.sleep(1.0)
                window = time.monotonic()
                time.sleep(0.5)
                run.go()
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    for target in targets:
                        counts[target.design].append(_connections(target.server))
                    time.sleep(1.0)
                sent = run.sent()
                time.sleep(1.5)
            for probe in probes:
                probe.keep_from(window)
            control = (run.received() - sent) * 1000
        except BaseException:
            if load is not None:
                load.stop()
            raise
    sends = [(float(t), END_NS + (first + i) * STEP_NS) for i, t in enumerate(sent) if t == t]
    # Per event sent, like the exact latencies, for a comparison event by event.
    paired = [
        None if c != c else round(float(c), 1) for c, t in zip(control, sent, strict=True) if t == t
    ]
    control = control[~np.isnan(control)]
    kafka_alone = {
        "received": int(control.size),
        "latencies_ms": paired,
        **{key: pct(control, q) for key, q in (("p50_ms", 50), ("p99_ms", 99), ("max_ms", 100))},
    }
    results = {
        target.design: _figures(target, probe, sends, counts[target.design], kafka_alone)
        for target, probe in zip(targets, probes, strict=True)
    }
    if load is not None:
        results[targets[0].design]["load"] = load.result()
    return results


def _figures(
    target: _Target,
    probe: _Probe,
    sends: list[tuple[float, int]],
    counts: list[dict[int, int]],
    kafka_alone: dict[str, Any],
) -> dict[str, Any]:
    """One design's figures for a phase: the probe's, per worker, the exact ones (with what
    they add to the bare consumer's, event by event) and, for ours, the time to shm."""
    result = _latencies(sends, probe.samples, target.workers)
    result["per_worker"] = _per_worker(sends, probe, counts)
    result["kafka_alone"] = kafka_alone
    if target.shm_dir is not None:
        published = _latencies(sends, probe.published, 1)
        result["published"] = {
            k: published.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "missing")
        }
        # Every worker reads the shm directory's newest generation at each request (a
        # memory load of the hint, webapp.generation_source), so a generation is visible in
        # all of them from its rename; the watching process sees it a little later.
        logs = {0: [(arrival, newest) for arrival, _, newest, _ in probe.published]}
        result["exact"] = {
            **_exact(sends, logs, 1, probe.samples),
            "instant": "the generation's rename in shm, seen by a process woken by it",
        }
    else:
        swaps = _swap_logs(target.server.port, target.workers)
        result["exact"] = {
            **_exact(sends, swaps, target.workers, probe.samples),
            "instant": "the frame swapped in, stamped by each process (/swaps)",
        }
    result["exact"].update(
        _over_kafka(result["exact"].get("latencies_ms"), kafka_alone["latencies_ms"])
    )
    return result


def _paired(ours: Mapping[str, Any], seed: Mapping[str, Any]) -> dict[str, Any]:
    """Ours' exact latency less the seed design's, event by event, over the events both
    showed (both designs were fed the same events at once): its p50 and p99, and the share of
    events ours showed first (or at the same instant)."""
    both = [
        (o, s)
        for o, s in zip(ours.get("latencies_ms") or [], seed.get("latencies_ms") or [], strict=True)
        if o is not None and s is not None
    ]
    if not both:
        return {"events": 0}
    diff = [o - s for o, s in both]
    return {
        "events": len(both),
        "ours_minus_seed_p50_ms": pct(diff, 50),
        "ours_minus_seed_p99_ms": pct(diff, 99),
        "ours_not_later_share": round(sum(d <= 0 for d in diff) / len(diff), 3),
    }


def _over_kafka(
    exact: Sequence[float | None] | None, kafka: Sequence[float | None]
) -> dict[str, Any]:
    """Event by event, what a design adds to the bare consumer's latency measured at the
    same moment (``over_kafka_p50_ms``/``_p99_ms``): Kafka's own latency moves from phase
    to phase (its p50 was 4.5 ms in one phase and 12.9 ms in the next of the same run), and
    the designs' phases run one after the other."""
    if not exact:
        return {}
    added = [e - k for e, k in zip(exact, kafka, strict=True) if e is not None and k is not None]
    if not added:
        return {}
    return {"over_kafka_p50_ms": pct(added, 50), "over_kafka_p99_ms": pct(added, 99)}


def _line(r: Mapping[str, Any]) -> str:
    if "p50_ms" not in r:
        return f"no event seen by every worker ({r['missing']} missing)"
    pub = r.get("published")
    return (
        f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  not before p50 {r['not_before_p50_ms']} "
        f"p99 {r['not_before_p99_ms']} ms  spread p99 {r['spread_p99_ms']} ms  "
        f"missing {r['missing']}/{r['events']}  workers {r['workers_seen']}/"
        f"{r['workers_expected']}  probe gap {r['probe_gap_ms']} ms"
        + (f"  in shm: p50 {pub['p50_ms']} p99 {pub['p99_ms']} ms" if pub else "")
        + _exact_line(r.get("exact"))
        + f"  kafka alone: p50 {r['kafka_alone']['p50_ms']} p99 {r['kafka_alone']['p99_ms']} ms"
        + "\n           per worker (connections: visible p50/p99 ms): "
        + ", ".join(
            f"{w['connections']}: {w['visible_p50_ms']}/{w['visible_p99_ms']}"
            for w in r.get("per_worker", {}).values()
        )
    )


def _exact_line(exact: Mapping[str, Any] | None) -> str:
    if not exact or "p50_ms" not in exact:
        return ""
    return (
        f"  exact: p50 {exact['p50_ms']} p99 {exact['p99_ms']} ms, over Kafka alone p50 "
        f"{exact.get('over_kafka_p50_ms')} p99 {exact.get('over_kafka_p99_ms')} ms "
        f"(checked against {exact['checked']} probe answers to requests sent after an "
        f"instant: {exact['violations']} without the event)"
    )


def _published_rows(shm_dir: Path) -> int:
    snapshot = Reader(shm_dir).current() if (shm_dir / "generation.hint").exists() else None
    return 0 if snapshot is None else snapshot.table.num_rows


def _start_ours(
    common: Mapping[str, str], shm_dir: Path, logdir: Path, initial: int
) -> tuple[Server, Callable[[], None]]:
    """The daemon on the topic publishing into ``shm_dir``, then Gunicorn once the daemon
    published the backlog (``initial`` rows)."""
    env = child_env({**common, "SHM_DIR": str(shm_dir)})
    log = logdir / f"daemon-{shm_dir.name}.log"
    daemon = Child("cache_daemon", [sys.executable, "-m", "cache_daemon"], env=env, log=log)
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
