"""The worker side of ``bench.series_scale``: ``python -m bench._series_reader DIR SERIES
[shm|webapp]``.

A process that reads the published window as a web worker does (one ``shm.Reader``, or in
``wsgi`` mode the web application's own), driven
by one command per line on stdin, answering one JSON line per command on stdout. ``shm``
(the default) looks series up with ``Snapshot.series_table``; ``webapp`` goes the way of a
``POST /predict`` with a ``series_id`` in the web service: the generation's
``webapp.snapshot_view.SnapshotView`` (its metadata parsed, its summary), the series catalog's
lookup (``webapp.series_catalog``) and the worker's forecast memo
(``webapp.forecast_memo.ForecastMemo``) keyed by the series' version, whose entry a series
keeps while its segment is carried over. The memo's value here is a stand-in (the series'
last value): the model's own time, the same for one series whatever the window, is left out.

``open``
    the first ``current()`` of this process (a new worker) and its first lookup;
``first CHANGED OTHER``
    after a publication: ``current()`` plus the lookup of series OTHER (a worker's first
    request), then the lookup of CHANGED (the first into the rewritten segment);
``lookups N SEED``
    N lookups of random series, twice: the first pass (a segment not touched yet decodes its
    index) and again (every segment indexed), each timed on its own; then N lookups of one
    series (everything it touches in the CPU caches: the work itself); then the N random
    series' ``Snapshot.series_key`` alone (``lookup_probe_us``: hashing the id to its
    segment and probing that segment's index, without slicing its Arrow table);
``serve N SEED``, then ``hit K`` and ``miss K``
    (``wsgi`` mode, a process that makes no lookup of its own) ``POST /predict`` with a
    ``series_id`` through the web application itself, its WSGI callable called in this
    process (``webapp.create_app``; no socket, no server): the whole request's path, body
    parsing, view, catalog, memo, forecast, JSON encoding and the metrics included.
    ``serve`` picks N series and requests each once, ``hit`` and ``miss`` answer the times
    (ns) of K memo hits or misses (see :class:`_Requests`);
``pss``
    this process's memory (``/proc/self/smaps_rollup``, see :func:`pss_kib`) and the same
    before it opened anything;
``quit``.

Series are named ``series_id(n)`` for ``n < SERIES``.
"""

from __future__ import annotations

import io
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shm import Reader, Snapshot
from webapp import Settings, create_app
from webapp.forecast_memo import ForecastMemo
from webapp.snapshot_view import SeriesForecast, SnapshotView

__all__ = ["pss_kib", "series_id"]

_MODEL_FILE = "model-bench.skops"
# Enough entries for every series a run looks up: hits are hits, as in a sized worker.
_MEMO = 1 << 22


def series_id(number: int) -> str:
    """The id of series ``number`` in the benchmark's windows."""
    return f"s{number:07d}"


def pss_kib() -> dict[str, int]:
    """This process's memory, KiB: ``pss_kib`` (proportional set size), split into
    ``pss_anon_kib`` (its own heap: indexes, Python objects) and ``pss_shmem_kib`` (its
    share of the mapped window pages it touched, which the kernel maps in 64 KiB runs
    around each fault), and ``rss_kib``."""
    keys = {"Pss": "pss_kib", "Pss_Anon": "pss_anon_kib", "Pss_Shmem": "pss_shmem_kib"}
    keys["Rss"] = "rss_kib"
    out = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in keys:
            out[keys[key]] = int(rest.split()[0])
    return out


class _Lookups:
    """One series lookup as a worker of ``mode`` makes it (see the module docstring)."""

    def __init__(self, mode: str) -> None:
        if mode not in ("shm", "webapp", "wsgi"):
            raise ValueError(f"mode must be shm, webapp or wsgi, not {mode!r}")
        self._webapp = mode == "webapp"
        self._memo: ForecastMemo[SeriesForecast] = ForecastMemo(_MEMO)

    def __call__(self, snapshot: Snapshot, series: str) -> int:
        start = time.perf_counter_ns()
        if self._webapp:
            view = SnapshotView.of(snapshot, self._memo)
            view.summary()
            rows = view.series(series)
            key = (_MODEL_FILE, rows.version, rows.series_id)
            # A hit, as in the web service, never slices the series' rows; the view raised
            # for an id the generation does not hold.
            found = int(bool(self._memo.get(key, lambda: f"{rows.values('demand_mw')[-1]}")))
        else:
            table = snapshot.series_table(series)
            found = 0 if table is None else table.num_rows
        elapsed = time.perf_counter_ns() - start
        if not found:
            raise RuntimeError(f"series {series} not found in generation {snapshot.generation}")
        return elapsed


class _Requests:
    """``POST /predict {"series_id": ...}`` through the application's WSGI callable, in a
    process of its own (a worker holds one reader: one mapping, and with Python's ``mmap``
    one descriptor, per segment file).

    The forecast memo (``FORECAST_MEMO_SERIES``) holds ``hot`` entries (a quarter of the
    series asked for, at most 256), so that, at every window size alike, the requests for
    the ``hot`` series last forecast are memo hits and those cycling over the others memo
    misses (no series returns before ``hot`` others). Two rows, each the median (and p99) of
    N requests, for series whose segments are indexed already (each was requested once
    before, by :meth:`warm`):

    * ``request_hit_us``: random series among the ``hot`` ones (memo hits: no model);
    * ``request_miss_us``: the other series in turn (memo misses: the series' rows sliced
      and fed to the model).

    A worker with the default memo (4,096 series) serves a random series of a window of
    1,000 series as a hit (all fit), of 1,000,000 series nearly always as a miss.
    """

    HOT = 256

    def __init__(self, directory: str, series: int, requests: int, seed: int) -> None:
        rng = random.Random(seed)
        self.names = [series_id(n) for n in rng.sample(range(series), min(requests, series))]
        self.hot = max(1, min(self.HOT, len(self.names) // 4))
        self._missed = 0
        self._recent = self.names[-self.hot :]
        self._rng = rng
        env = {"SHM_DIR": directory, "FORECAST_MEMO_SERIES": str(self.hot)}
        self._app = create_app(Settings.from_env(env))

    def post(self, series: str) -> int:
        """One request; its time in ns. RuntimeError unless the answer is a 200."""
        body = json.dumps({"series_id": series}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "SCRIPT_NAME": "",
            "PATH_INFO": "/predict",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        status: list[str] = []

        def start_response(
            line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], object]:
            status.append(line)
            return len

        start = time.perf_counter_ns()
        answer: Iterable[bytes] = self._app(environ, start_response)
        try:
            payload = b"".join(answer)
        finally:
            close = getattr(answer, "close", None)
            if close is not None:
                close()
        elapsed = time.perf_counter_ns() - start
        if not status or not status[0].startswith("200"):
            raise RuntimeError(f"POST /predict {series}: {status} {payload[:300]!r}")
        return elapsed

    def warm(self) -> None:
        """Request every series once: indexes their segments, loads the model; the last
        ``hot`` stay in the memo."""
        for name in self.names:
            self.post(name)

    def timed(self, kind: str, count: int) -> list[int]:
        """``count`` requests of ``kind`` (``hit`` or ``miss``), their times in ns;
        RuntimeError when the memo's counters say one went the other way."""
        memo = self._app.extensions["webapp"].forecasts
        before = memo.hits if kind == "hit" else memo.misses
        if kind == "hit":
            # Series the memo inserted last (a hit moves an entry, never drops one).
            hot = self._recent
            times = [self.post(self._rng.choice(hot)) for _ in range(count)]
        else:
            others = self.names[: -self.hot]
            times, missed = [], []
            for _ in range(count):
                missed.append(others[self._missed % len(others)])
                times.append(self.post(missed[-1]))
                self._missed += 1
            # The newest entries, whatever the hits before reordered.
            self._recent = missed[-self.hot :]
        done = (memo.hits if kind == "hit" else memo.misses) - before
        if done != count:
            raise RuntimeError(f"{done} memo {kind}s of {count} requests meant to {kind}")
        return times


def _current(reader: Reader) -> Snapshot:
    snapshot = reader.current()
    if snapshot is None:
        raise RuntimeError("nothing published")
    return snapshot


def main(directory: str, series: int, mode: str = "shm") -> int:
    baseline = pss_kib()
    reader = Reader(directory)
    _lookup = _Lookups(mode)
    requests: _Requests | None = None
    for line in sys.stdin:
        command, *args = line.split()
        out: dict[str, Any]
        if command == "open":
            start = time.perf_counter_ns()
            snapshot = _current(reader)
            opened = time.perf_counter_ns() - start
            first = _lookup(snapshot, series_id(series // 2))
            out = {"open_us": opened / 1e3, "open_first_lookup_us": first / 1e3}
        elif command == "first":
            start = time.perf_counter_ns()
            snapshot = _current(reader)
            _lookup(snapshot, args[1])
            first = time.perf_counter_ns() - start
            changed = _lookup(snapshot, args[0])
            out = {
                "generation": snapshot.generation,
                "first_request_us": first / 1e3,
                "changed_lookup_us": changed / 1e3,
            }
        elif command == "lookups":
            rng = random.Random(int(args[1]))
            names = [series_id(rng.randrange(series)) for _ in range(int(args[0]))]
            snapshot = _current(reader)
            cold = [_lookup(snapshot, name) for name in names]
            warm = [_lookup(snapshot, name) for name in names]
            same = [_lookup(snapshot, names[0]) for _ in names]
            probes = []
            for name in names:
                start = time.perf_counter_ns()
                snapshot.series_key(name)
                probes.append(time.perf_counter_ns() - start)
            out = {
                "lookup_probe_us": statistics.median(probes) / 1e3,
                "lookup_first_pass_us": statistics.median(cold) / 1e3,
                "lookup_us": statistics.median(warm) / 1e3,
                "lookup_p99_us": sorted(warm)[int(len(warm) * 0.99)] / 1e3,
                "lookup_same_us": statistics.median(same) / 1e3,
            }
        elif command == "serve":
            requests = _Requests(directory, series, int(args[0]), int(args[1]))
            requests.warm()
            out = {"request_memo_series": requests.hot}
        elif command in ("hit", "miss"):
            assert requests is not None, "serve first"
            out = {"ns": requests.timed(command, int(args[0]))}
        elif command == "pss":
            out = {
                **pss_kib(),
                "baseline_pss_kib": baseline["pss_kib"],
                "baseline_pss_anon_kib": baseline["pss_anon_kib"],
            }
        else:
            return 0
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:4]))
