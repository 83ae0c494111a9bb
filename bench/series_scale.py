"""Many-series benchmark: what one changed series costs the publisher and a worker, as the
number of series grows.

``python -m bench.series_scale [--quick] [--sizes N,N,...] [--rows R]
[--series-per-segment K] [--publications P] [--requests N] [--results-dir DIR] [--plot PNG]``
prints two tables and writes ``bench/results/series_scale.json`` and its figures,
``series-scale.png`` (or into DIR; ``--plot`` names another PNG: ``bench.series_plots``,
whose ``python -m bench.series_plots`` draws them again from a JSON written before).

For each series count (default 1,000, 100,000 and 1,000,000 series of 336 rows; ``--quick``:
100 and 1,000 of 48) it publishes the whole window once (``Publisher.publish_segments``
with a lazy mapping: one segment in memory at a time) and starts a worker-like reader process
(``bench._series_reader``); then, ``--publications`` times, each size in turn changes one
random series and publishes only its segment. Measured in the same run, medians:

* ``publish_ms``: ``publish_segments`` of the one changed segment (``segment_build_ms``, the
  daemon-side building of that segment's table, and ``segment_checksum_ms``, its
  ``shm.table_checksum`` that the daemon adds to the generation's ``window_checksum``, are
  reported apart);
* ``first_request_us``: the worker's ``current()`` after the publication plus the lookup of a
  series it had looked up before (its first request); ``changed_lookup_us``: then the first
  lookup into the rewritten segment (decodes its index);
* ``lookup_us``: ``Snapshot.series_table`` of a random series once every segment it needs is
  indexed (``lookup_first_pass_us``: the same series the first time, segments untouched;
  ``lookup_same_us``: one series again and again, the work without the memory latency of
  reaching a random segment's objects, which a large window no longer keeps in CPU caches;
  ``lookup_probe_us``: ``Snapshot.series_key`` of a random series, the index probe alone,
  which is what a forecast memo hit needs: the rest of ``lookup_us`` is the zero-copy slice
  of a segment's Arrow table);
* ``open_ms``: a new worker's first ``current()`` (maps every segment file);
* ``shm_bytes_per_series``: the files of the first generation (manifest, segment files,
  hint) divided by the series: what a series takes in ``/dev/shm``;
* ``pss_kib``: the worker's proportional set size after its lookups, ``pss_anon_kib`` of it
  its own heap and ``pss_shmem_kib`` its share of the window pages it touched
  (``baseline_*``: before it opened anything);
* ``webapp_*``: the same figures from a second worker process that looks series up the way
  the web service answers ``POST /predict`` with a ``series_id`` (``bench._series_reader``
  in ``webapp`` mode: the generation's view and summary, the series catalog, the forecast
  memo keyed by the series' version; the model itself left out);
* ``request_*_us``: whole ``POST /predict`` requests with a ``series_id``, in a third
  process through the web application's WSGI callable (``bench._series_reader``'s
  ``requests``): ``request_hit_us`` forecast memo hits, ``request_miss_us`` memo misses (the
  model runs). A random series with the default memo (4,096 series) is a hit at 1 k series
  and nearly always a miss at 1 M, so the hit and miss rows compare like with like across
  sizes; ``request_pss_kib`` is that process's PSS after them (a web worker's).

The goals compare the largest size with the smallest in the same run: publish and first
request within 3x, per-request and per-lookup within 1.5x.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from bench._common import add_results_dir_option, comma_ints, take_turns, write_results
from bench._series_reader import series_id
from bench.series_plots import plot_series_scale
from contract import defaults
from contract.metadata import GenerationMeta, iso_utc, schema_fingerprint
from contract.series import segment_of
from forecasting.train import Options, train
from scripts.sample_window import SAMPLE, install_model
from shm import SERIES_PER_SEGMENT, Publisher, segments_for, table_checksum

FULL_SIZES = [1_000, 100_000, 1_000_000]
QUICK_SIZES = [100, 1_000]
ROWS = 336
QUICK_ROWS = 48
PUBLICATIONS = 30
QUICK_PUBLICATIONS = 5
LOOKUPS = 2_000
REQUESTS = 1_000
QUICK_REQUESTS = 100
REQUEST_ROUND = 50
WARM_SEED = 1
LOOKUP_SEED = 2

GOAL_PUBLISH = 3.0
GOAL_FIRST_REQUEST = 3.0
GOAL_LOOKUP = 1.5
GOAL_REQUEST = 1.5

_STEP_NS = 30 * 60 * 1_000_000_000
_START_NS = int(np.datetime64("2024-01-01T00:00:00", "ns").astype(np.int64))


class Window:
    """The daemon side: ``series`` series of ``rows`` rows in ``segments`` segments; a
    series' values are its version, which :meth:`change` increments."""

    def __init__(self, series: int, rows: int, segments: int) -> None:
        self.segments = segments
        self._rows = rows
        members: list[list[str]] = [[] for _ in range(segments)]
        for number in range(series):
            name = series_id(number)
            members[segment_of(name, segments)].append(name)
        self._members = [pa.array(sorted(ids), pa.string()) for ids in members]
        self._versions: dict[str, int] = {}
        self._times = _START_NS + np.arange(rows, dtype=np.int64) * _STEP_NS

    def metadata(self, model: Mapping[str, str]) -> dict[str, str]:
        """The generation's metadata as the daemon writes it (``model``: the installed
        model's entries), without the window checksum, which nothing on a request's path
        of a segmented generation recomputes."""
        series = sum(len(ids) for ids in self._members)
        meta = GenerationMeta(
            offsets={},
            topic=defaults.TOPIC,
            source="replay",
            state="live",
            rows=series * self._rows,
            series=series,
            time_min=iso_utc(int(self._times[0])),
            time_max=iso_utc(int(self._times[-1])),
            schema_fingerprint=schema_fingerprint(self.segment_table(0).schema),
        )
        return {**meta.to_metadata(), **model}

    def change(self, name: str) -> int:
        """Give ``name`` new values; returns its segment."""
        self._versions[name] = self._versions.get(name, 0) + 1
        return segment_of(name, self.segments)

    def segment_table(self, segment: int) -> pa.Table:
        """The table of ``segment`` (sorted by id then time)."""
        ids = self._members[segment]
        count = len(ids)
        versions = np.array(
            [self._versions.get(str(name), 0) for name in ids.to_pylist()], dtype=np.float64
        )
        return pa.table(
            {
                "series_id": ids.take(np.repeat(np.arange(count), self._rows)),
                "time": pa.array(np.tile(self._times, count), pa.timestamp("ns", tz="UTC")),
                "demand_mw": pa.array(np.repeat(versions, self._rows)),
            }
        )


class EverySegment(Mapping[int, pa.Table]):
    """Every segment of a window, each table built when the publisher asks for it."""

    def __init__(self, window: Window) -> None:
        self._window = window

    def __getitem__(self, segment: int) -> pa.Table:
        return self._window.segment_table(segment)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._window.segments))

    def __len__(self) -> int:
        return self._window.segments


def model_artifact(rows: int) -> bytes:
    """The service's forecaster (one Ridge tier, horizon 48) fitted on the sample series,
    whose 30-minute step the benchmark's series share; its lags fit in ``rows``."""
    options = Options(tiers=(min(48, rows // 4),), horizon=48, candidates=("ridge",))
    frame = pd.read_parquet(SAMPLE)
    data, _ = train(frame, time_col="time", target="demand_mw", options=options)
    return data


class Worker:
    """The reader process (``mode``: see ``bench._series_reader``)."""

    def __init__(self, directory: Path, series: int, mode: str = "shm") -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench._series_reader", str(directory), str(series), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the reader process ended on {command!r}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()
        self._process.wait(timeout=60)


class Scale:
    """One series count: its window, publisher and worker, and the figures gathered."""

    def __init__(
        self,
        series: int,
        rows: int,
        directory: Path,
        *,
        series_per_segment: int,
        artifact: bytes,
        requests: int,
    ) -> None:
        self.series = series
        self._requests = requests
        self._server: Worker | None = None
        self._memo: dict[str, Any] = {}
        self._times: dict[str, list[int]] = {"hit": [], "miss": []}
        self.segments = segments_for(series, series_per_segment)
        self._directory = directory
        self._rng = random.Random(series)
        warm = random.Random(WARM_SEED)
        self._warmed = [series_id(warm.randrange(series)) for _ in range(LOOKUPS)]
        started = time.perf_counter()
        self._window = Window(series, rows, self.segments)
        self._publisher = Publisher(directory)
        self._metadata = self._window.metadata(install_model(directory, artifact))
        self._publisher.publish_segments(
            EverySegment(self._window), segments=self.segments, metadata=self._metadata
        )
        shm_bytes = _bytes_under(directory)
        self._worker = Worker(directory, series)
        self._opened = self._worker.ask("open")
        self._worker.ask(f"lookups {LOOKUPS} {WARM_SEED}")
        self._webapp = Worker(directory, series, "webapp")
        self._webapp_opened = self._webapp.ask("open")
        self._webapp.ask(f"lookups {LOOKUPS} {WARM_SEED}")
        self._figures: dict[str, Any] = {
            "series": series,
            "rows_per_series": rows,
            "segments": self.segments,
            "window_rows": series * rows,
            "initial_publish_s": round(time.perf_counter() - started, 2),
            "shm_bytes": shm_bytes,
            "shm_bytes_per_series": round(shm_bytes / series, 1),
            "open_ms": self._opened["open_us"] / 1e3,
            "webapp_open_ms": self._webapp_opened["open_us"] / 1e3,
        }
        keys = ("segment_build_ms", "segment_checksum_ms", "publish_ms", "first_request_us")
        self._samples: dict[str, list[float]] = {key: [] for key in keys}
        for key in ("changed_lookup_us", "webapp_first_request_us", "webapp_changed_lookup_us"):
            self._samples[key] = []

    def publication(self) -> None:
        """Change one random series, publish its segment, let the worker serve a request."""
        name = series_id(self._rng.randrange(self.series))
        segment = self._window.change(name)
        start = time.perf_counter_ns()
        table = self._window.segment_table(segment)
        self._samples["segment_build_ms"].append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        table_checksum(table)
        self._samples["segment_checksum_ms"].append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        self._publisher.publish_segments(
            {segment: table}, segments=self.segments, metadata=self._metadata
        )
        self._samples["publish_ms"].append((time.perf_counter_ns() - start) / 1e6)
        other = self._rng.choice(self._warmed)
        for prefix, worker in (("", self._worker), ("webapp_", self._webapp)):
            answer = worker.ask(f"first {name} {other}")
            self._samples[f"{prefix}first_request_us"].append(answer["first_request_us"])
            self._samples[f"{prefix}changed_lookup_us"].append(answer["changed_lookup_us"])

    def serve(self) -> None:
        """Start the process that serves requests (``bench._series_reader``, ``wsgi``)."""
        self._server = Worker(self._directory, self.series, "wsgi")
        self._memo = self._server.ask(f"serve {self._requests} {LOOKUP_SEED}")

    def request_round(self, count: int) -> None:
        """``count`` memo hits, then ``count`` misses."""
        assert self._server is not None
        for kind in ("hit", "miss"):
            self._times[kind] += self._server.ask(f"{kind} {count}")["ns"]

    def _request_figures(self) -> dict[str, Any]:
        assert self._server is not None
        out: dict[str, Any] = {**self._memo}
        for kind, times in self._times.items():
            out[f"request_{kind}_us"] = statistics.median(times) / 1e3
            out[f"request_{kind}_p99_us"] = sorted(times)[int(len(times) * 0.99)] / 1e3
        memory = self._server.ask("pss")
        out.update({f"request_{key}": memory[key] for key in ("pss_kib", "pss_anon_kib")})
        return out

    def finish(self) -> dict[str, Any]:
        """Last lookups and memory; stops the worker, removes the window."""
        try:
            lookups = self._worker.ask(f"lookups {LOOKUPS} {LOOKUP_SEED}")
            memory = self._worker.ask("pss")
            webapp = {
                **self._webapp.ask(f"lookups {LOOKUPS} {LOOKUP_SEED}"),
                **self._webapp.ask("pss"),
            }
            requests = self._request_figures() if self._server is not None else {}
        finally:
            if self._server is not None:
                self._server.close()
            self._worker.close()
            self._webapp.close()
            self._publisher.close()
        files = len(list((self._directory / "segments").iterdir()))
        shutil.rmtree(self._directory, ignore_errors=True)
        medians = {key: statistics.median(values) for key, values in self._samples.items()}
        return {
            **self._figures,
            "segment_files": files,
            **medians,
            "publish_max_ms": max(self._samples["publish_ms"]),
            **lookups,
            **memory,
            **{f"webapp_{key}": value for key, value in webapp.items()},
            **requests,
        }


def _bytes_under(directory: Path) -> int:
    """Bytes of every file in ``directory`` and its subdirectories (what the window takes in
    the memory-backed filesystem)."""
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def measure(
    sizes: list[int],
    rows: int,
    workdir: Path,
    *,
    series_per_segment: int,
    publications: int,
    requests: int,
) -> list[dict[str, Any]]:
    """Every figure for every series count. The windows are set up one after the other, then
    the publications take turns between them, so that a machine busy with something else
    for a while slows every size alike and the ratios stay meaningful."""
    scales = []
    artifact = model_artifact(rows)
    try:
        for size in sizes:
            directory = workdir / f"series-{size}"
            scales.append(
                Scale(
                    size,
                    rows,
                    directory,
                    series_per_segment=series_per_segment,
                    artifact=artifact,
                    requests=requests,
                )
            )
            print(f"  {size:,} series published", flush=True)
        take_turns(scales, publications)
        # The requests too take turns, in rounds, after the publications.
        for scale in scales:
            scale.serve()
        for done in range(0, requests, REQUEST_ROUND):
            for scale in scales:
                scale.request_round(min(REQUEST_ROUND, requests - done))
    finally:
        results = [scale.finish() for scale in scales]
    return results


def verdicts(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Largest size over smallest, against the goals."""
    small, large = sizes[0], sizes[-1]
    out: dict[str, Any] = {"largest_over_smallest": f"{large['series']} / {small['series']}"}
    for key, goal in (
        ("publish_ms", GOAL_PUBLISH),
        ("first_request_us", GOAL_FIRST_REQUEST),
        ("lookup_us", GOAL_LOOKUP),
        ("lookup_same_us", GOAL_LOOKUP),
        ("lookup_probe_us", GOAL_LOOKUP),
        ("webapp_first_request_us", GOAL_FIRST_REQUEST),
        ("webapp_lookup_us", GOAL_LOOKUP),
        ("request_hit_us", GOAL_REQUEST),
        ("request_miss_us", GOAL_REQUEST),
    ):
        ratio = large[key] / small[key]
        out[f"{key}_ratio"] = round(ratio, 2)
        out[f"{key}_ok"] = ratio <= goal
    return out


def print_table(sizes: list[dict[str, Any]]) -> None:
    print(
        f"{'series':>10} {'segments':>8} {'publish ms':>10} {'build ms':>9} {'first µs':>9}"
        f" {'changed µs':>10} {'lookup µs':>9} {'same µs':>8} {'cold µs':>8} {'open ms':>8}"
        f" {'PSS MiB':>8}"
        f" {'anon MiB':>8} {'initial s':>9} {'web first µs':>12} {'web µs':>7} {'web anon MiB':>12}"
    )
    for r in sizes:
        print(
            f"{r['series']:>10,} {r['segments']:>8} {r['publish_ms']:>10.2f}"
            f" {r['segment_build_ms']:>9.2f} {r['first_request_us']:>9.1f}"
            f" {r['changed_lookup_us']:>10.1f} {r['lookup_us']:>9.2f} {r['lookup_same_us']:>8.2f}"
            f" {r['lookup_first_pass_us']:>8.1f} {r['open_ms']:>8.1f}"
            f" {r['pss_kib'] / 1024:>8.1f}"
            f" {(r['pss_anon_kib'] - r['baseline_pss_anon_kib']) / 1024:>8.1f}"
            f" {r['initial_publish_s']:>9.1f} {r['webapp_first_request_us']:>12.1f}"
            f" {r['webapp_lookup_us']:>7.2f}"
            f" {(r['webapp_pss_anon_kib'] - r['webapp_baseline_pss_anon_kib']) / 1024:>12.1f}"
        )


def print_requests(sizes: list[dict[str, Any]]) -> None:
    """The per-request table: ``POST /predict`` through the application, memo hit and miss
    apart, and the bare lookups."""
    print(
        f"{'series':>10} {'request hit µs':>14} {'p99':>8} {'request miss µs':>15} {'p99':>8}"
        f" {'lookup µs':>9} {'probe µs':>8} {'web lookup µs':>13} {'PSS MiB':>8}"
    )
    for r in sizes:
        print(
            f"{r['series']:>10,} {r['request_hit_us']:>14.1f} {r['request_hit_p99_us']:>8.0f}"
            f" {r['request_miss_us']:>15.1f} {r['request_miss_p99_us']:>8.0f}"
            f" {r['lookup_us']:>9.2f} {r['lookup_probe_us']:>8.2f} {r['webapp_lookup_us']:>13.2f}"
            f" {r['request_pss_kib'] / 1024:>8.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few publications")
    parser.add_argument(
        "--sizes",
        type=comma_ints,
        help=f"series counts, comma-separated (default {FULL_SIZES})",
    )
    parser.add_argument("--rows", type=int, help=f"rows per series (default {ROWS})")
    parser.add_argument(
        "--series-per-segment",
        type=int,
        default=SERIES_PER_SEGMENT,
        help=f"series per segment the segment count aims at (default {SERIES_PER_SEGMENT})",
    )
    parser.add_argument("--publications", type=int, help=f"default {PUBLICATIONS}")
    parser.add_argument(
        "--requests",
        type=int,
        help=f"timed POST /predict per row of the request table (default {REQUESTS})",
    )
    parser.add_argument(
        "--plot", type=Path, help="draw the figures into this PNG (default: next to the JSON)"
    )
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    rows = args.rows or (QUICK_ROWS if args.quick else ROWS)
    publications = args.publications or (QUICK_PUBLICATIONS if args.quick else PUBLICATIONS)
    workdir = Path(tempfile.mkdtemp(prefix="bench-series-", dir="/dev/shm"))
    try:
        results = measure(
            sizes,
            rows,
            workdir,
            series_per_segment=args.series_per_segment,
            publications=publications,
            requests=args.requests or (QUICK_REQUESTS if args.quick else REQUESTS),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)
    print_requests(results)
    summary = verdicts(results)
    for key, value in summary.items():
        print(f"  {key}: {value}")
    payload = {
        "quick": args.quick,
        "series_per_segment": args.series_per_segment,
        "sizes": results,
        "verdicts": summary,
    }
    path = write_results("series_scale", payload, args.results_dir)
    print(f"wrote {path}")
    plot = args.plot or path.with_name("series-scale.png")
    print(f"wrote {plot_series_scale(payload, plot, path.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
