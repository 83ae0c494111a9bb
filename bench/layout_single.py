"""One series, inline or segmented: what a keyless topic's window would cost in each layout.

``python -m bench.layout_single [--quick] [--rows N,N,...] [--publications P]
[--results-dir DIR]``
prints a table and writes ``bench/results/layout_single.json``.

For each window size (default 4,032 rows, the bundled sample's length and the default
``WINDOW_ROWS``, and 100,000 rows) and each ``PUBLISH_LAYOUT`` (``inline``: one file;
``segmented``: a manifest and one segment file), the daemon's own writer
(``cache_daemon.writer.WindowWriter`` over ``SeriesWindows``) publishes one new event at a
time, ``--publications`` times, the layouts taking turns; after each publication a
worker-like reader in this process opens the generation and serves a request the web
service's way (``SnapshotView``: summary, series catalog, the one series' rows). Medians:

* ``write_ms``: ``WindowWriter.write`` (table or segment built, metadata, files written);
* ``first_request_us``: ``Reader.current()`` on the new generation plus the view's summary
  and the series' rows (the model's own time left out: the same in both layouts).

Both layouts rewrite the whole series on every change (it is one segment); the comparison is
of their fixed costs, and of what a worker recomputes (an inline generation's checksum is
recomputed by each worker, a segmented one's is taken from the metadata).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import add_results_dir_option, comma_ints, take_turns, write_results
from cache_daemon.publication import WindowFacts
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.writer import PublishLayout, WindowWriter
from contract.series import DEFAULT_SERIES_ID
from shm import Publisher, Reader
from webapp.forecast_memo import ForecastMemo
from webapp.snapshot_view import SeriesForecast, SnapshotView

SIZES = [4_032, 100_000]
PUBLICATIONS = 200
LAYOUTS: tuple[PublishLayout, ...] = ("inline", "segmented")
_STEP_NS = 1_800 * 1_000_000_000
_T0_NS = 960_163_200 * 1_000_000_000


def _describe(facts: WindowFacts) -> dict[str, str]:
    return {"rows": str(facts.rows), "window_checksum": facts.checksum}


class Run:
    """One layout and size: the daemon's windows and writer, and a reader."""

    def __init__(self, directory: Path, rows: int, layout: PublishLayout) -> None:
        self.windows = SeriesWindows(["demand_mw"], max_rows=rows, max_duration_ns=None)
        for i in range(rows):
            self.windows.apply(DEFAULT_SERIES_ID, _T0_NS + i * _STEP_NS, (float(i % 97),))
        self._next = rows
        self.publisher = Publisher(directory)
        self.writer = WindowWriter(self.publisher, self.windows, layout=layout)
        self.writer.write(_describe)
        self.windows.clear_changed()
        self.reader = Reader(directory)
        self.memo: ForecastMemo[SeriesForecast] = ForecastMemo(16)
        self.samples: dict[str, list[float]] = {"write_ms": [], "first_request_us": []}

    def publication(self) -> None:
        i = self._next
        self._next += 1
        self.windows.apply(DEFAULT_SERIES_ID, _T0_NS + i * _STEP_NS, (float(i % 97),))
        start = time.perf_counter_ns()
        self.writer.write(_describe)
        self.samples["write_ms"].append((time.perf_counter_ns() - start) / 1e6)
        self.windows.clear_changed()
        start = time.perf_counter_ns()
        snapshot = self.reader.current()
        assert snapshot is not None
        view = SnapshotView.of(snapshot, self.memo)
        view.summary()
        view.series(None)
        self.samples["first_request_us"].append((time.perf_counter_ns() - start) / 1e3)

    def close(self) -> dict[str, float]:
        self.publisher.close()
        return {key: round(statistics.median(values), 3) for key, values in self.samples.items()}


def measure(sizes: list[int], publications: int, workdir: Path) -> list[dict[str, Any]]:
    results = []
    for rows in sizes:
        runs = {layout: Run(workdir / f"{layout}-{rows}", rows, layout) for layout in LAYOUTS}
        take_turns(list(runs.values()), publications)
        for layout, run in runs.items():
            results.append({"rows": rows, "layout": layout, **run.close()})
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small size, few publications")
    parser.add_argument(
        "--rows",
        type=comma_ints,
        help=f"window sizes, comma-separated (default {SIZES})",
    )
    parser.add_argument("--publications", type=int)
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    args.rows = args.rows or ([500] if args.quick else SIZES)
    args.publications = args.publications or (5 if args.quick else PUBLICATIONS)
    workdir = Path(tempfile.mkdtemp(prefix="bench-layout-", dir="/dev/shm"))
    try:
        results = measure(args.rows, args.publications, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'rows':>8} {'layout':>10} {'write ms':>9} {'first request µs':>17}")
    for r in results:
        line = f"{r['rows']:>8,} {r['layout']:>10} {r['write_ms']:>9.3f}"
        print(f"{line} {r['first_request_us']:>17.1f}")
    path = write_results("layout_single", {"sizes": results}, args.results_dir)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
