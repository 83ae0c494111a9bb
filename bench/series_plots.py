"""The figures of ``bench.series_scale`` as one PNG (matplotlib, Agg backend, the helpers of
``bench.compare.plots``): per series count, the publication, a worker's first request after
it, whole ``POST /predict`` requests (forecast memo hit and miss apart), the bare lookups and
the worker's memory; and, when their JSON files are next to the figures', the daemon's ingest
rate with many keys (``bench.ingest --series N``) and the freshness with many series
(``bench.ingest --latency-series N``).

``python -m bench.series_plots [--results-dir DIR] [--out PNG]`` draws them from
``DIR/series_scale.json`` (default ``bench/results/``) into PNG (default
``docs/img/series-scale.png``); ``python -m bench.series_scale --plot PNG`` draws them at
the end of a run.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from bench._common import RESULTS_DIR
from bench.compare.plots import plt, save_figure

__all__ = ["plot_series_scale"]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "series-scale.png"

_GREEN, _LIGHT, _BLUE, _ORANGE, _GREY = "#1b7837", "#7fbf7b", "#2166ac", "#e08214", "grey"


def _line(
    ax: Any, xs: list[int], ys: list[float], label: str, color: str, style: str = "-"
) -> None:
    ax.plot(xs, ys, style, marker="o", color=color, label=label)
    for x, y in zip(xs, ys, strict=True):
        text = f"{y:,.0f}" if y >= 100 else f"{y:.3g}"
        ax.annotate(text, (x, y), textcoords="offset points", xytext=(0, 5), fontsize=6)


def _goal(ax: Any, base: float, factor: float, color: str, what: str) -> None:
    ax.axhline(base * factor, color=color, lw=0.8, ls=":", label=f"goal: {what} <= {factor:g}x")


def _panel(ax: Any, title: str, ylabel: str) -> None:
    ax.set(xscale="log", xlabel="series in the window", ylabel=ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    ax.grid(True, which="major", alpha=0.3)


def _extras(results_dir: Path) -> dict[str, dict[str, Any]]:
    """The ingest and freshness results with many series found in ``results_dir``."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("ingest-*series-*.json")):
        if re.fullmatch(r"ingest-(latency-)?series-\d+(-\d+)?\.json", path.name):
            found[path.stem] = json.loads(path.read_text())
    return found


def _ingest_panel(ax: Any, extras: dict[str, dict[str, Any]]) -> None:
    """Ingest rates (events/s) and freshness (p50 / p99 ms) with many series, as bars."""
    labels: list[str] = []
    values: list[float] = []
    colors: list[str] = []
    for name, data in extras.items():
        count = name.split("series-")[1]
        for part, color in (("pipeline", _LIGHT), ("kafka_ingest", _GREEN)):
            rate = data.get(part, {}).get("events_per_s")
            if rate:
                labels.append(f"{part}\n{int(count.split('-')[0]):,} keys (events/s)")
                values.append(float(rate))
                colors.append(color)
        latency = data.get("kafka_latency_series", {})
        for pct, color in (("p50_ms", _BLUE), ("p99_ms", _ORANGE)):
            if latency.get(pct) is not None:
                labels.append(f"freshness {pct[:3]}\n{int(count.split('-')[0]):,} series (ms)")
                values.append(float(latency[pct]))
                colors.append(color)
    if not values:
        ax.text(
            0.5,
            0.5,
            "no ingest-*series-*.json\n(bench.ingest --series N,\n--latency-series N)",
            ha="center",
            va="center",
            fontsize=8,
        )
        ax.set_axis_off()
        return
    bars = ax.bar(range(len(values)), values, color=colors)
    ax.bar_label(bars, fmt="%.4g", fontsize=6)
    ax.set_yscale("log")
    ax.set_xticks(range(len(values)), labels, fontsize=6)
    ax.set_title("Ingest with many keys, freshness with many series", fontsize=9)


def plot_series_scale(results: dict[str, Any], path: Path, results_dir: Path | None = None) -> Path:
    """Draw the figures of one ``bench.series_scale`` run (its JSON payload) into ``path``."""
    sizes = results["sizes"]
    xs = [s["series"] for s in sizes]

    def col(key: str, scale: float = 1.0) -> list[float]:
        return [float(s[key]) * scale for s in sizes]

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    publish, first, request, lookup, memory, ingest = axes.flat

    _line(publish, xs, col("publish_ms"), "publish_segments, one changed series", _GREEN)
    _line(publish, xs, col("segment_build_ms"), "building its segment (daemon)", _LIGHT, "--")
    _goal(publish, sizes[0]["publish_ms"], 3.0, _GREY, "largest / smallest")
    _panel(publish, "Publication of one changed series", "ms (median)")

    _line(first, xs, col("first_request_us"), "current() + lookup (snapshot)", _GREEN)
    _line(first, xs, col("webapp_first_request_us"), "the web service's way", _BLUE, "--")
    _goal(first, sizes[0]["first_request_us"], 3.0, _GREY, "largest / smallest")
    _panel(first, "A worker's first request after a publication", "µs (median)")

    if "request_hit_us" in sizes[0]:
        _line(request, xs, col("request_hit_us"), "forecast memo hit", _GREEN)
        _line(request, xs, col("request_miss_us"), "memo miss (the model runs)", _ORANGE)
        _goal(request, sizes[0]["request_hit_us"], 1.5, _GREEN, "hit, largest / smallest")
        _goal(request, sizes[0]["request_miss_us"], 1.5, _ORANGE, "miss, largest / smallest")
    _panel(request, "POST /predict {series_id} through the app (WSGI)", "µs per request (median)")

    _line(lookup, xs, col("lookup_us"), "Snapshot.series_table, random series", _GREEN)
    _line(lookup, xs, col("lookup_same_us"), "the same series again", _LIGHT, "--")
    if "lookup_probe_us" in sizes[0]:
        _line(lookup, xs, col("lookup_probe_us"), "series_key: the index probe alone", _ORANGE)
    _line(lookup, xs, col("webapp_lookup_us"), "view + catalog + memo, random", _BLUE)
    _goal(lookup, sizes[0]["lookup_us"], 1.5, _GREY, "series_table, largest / smallest")
    _panel(lookup, "Bare lookup of one series", "µs (median)")

    _line(memory, xs, col("pss_kib", 1 / 1024), "PSS, snapshot reader after 4,000 lookups", _GREEN)
    heap = [(s["pss_anon_kib"] - s["baseline_pss_anon_kib"]) / 1024 for s in sizes]
    _line(memory, xs, heap, "of which its own heap", _LIGHT, "--")
    if "request_pss_kib" in sizes[0]:
        _line(memory, xs, col("request_pss_kib", 1 / 1024), "PSS, the app, its requests", _BLUE)
    _panel(memory, "A worker's memory", "MiB")

    _ingest_panel(ingest, _extras(results_dir or RESULTS_DIR))
    rows = sizes[0]["rows_per_series"]
    fig.suptitle(
        f"Many series x {rows} rows, one series changed per publication (bench.series_scale)",
        fontsize=11,
    )
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    results = json.loads((args.results_dir / "series_scale.json").read_text())
    print(f"wrote {plot_series_scale(results, args.out, args.results_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
