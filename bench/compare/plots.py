"""PNG plots of ``bench.compare`` results (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench._locust import no_answer
from bench.compare.goals import TARGETS, freshness_phases, judged

__all__ = ["plot_all", "plt", "save_figure"]

_COLORS = {
    "ours": "#1b7837",
    "ours_new_generation": "#7fbf7b",
    "seed": "#c51b7d",
    "private": "#2166ac",
    "redis": "#e08214",
}
_LABELS = {
    "ours": "ours: Reader.current(), unchanged (per request)",
    "ours_new_generation": "ours: first current() of a new generation (once per generation)",
    "seed": "seed design: deep copy under a lock",
    "private": "private caches: own frame by reference",
    "redis": "Redis: GET + unpickle",
}


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG (tight layout, 90 dpi) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_readpath(data: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for design, values in data["us"].items():
        points = [(n, v) for n, v in zip(data["sizes"], values, strict=True) if v is not None]
        if points:
            style = "--" if design == "ours_new_generation" else "-"
            ax.plot(
                *zip(*points, strict=True),
                style,
                marker="o",
                color=_COLORS[design],
                label=_LABELS[design],
            )
    goal = TARGETS["read_unchanged_us"]
    ax.axhline(goal, color="grey", lw=0.8, ls=":", label=f"goal for ours: {goal:g} µs")
    ax.set(xscale="log", yscale="log", xlabel="window rows", ylabel="µs per request (median)")
    ax.set_title("Read path: cost to obtain the latest window")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(True, which="major", alpha=0.3)
    return save_figure(fig, path)


def plot_memory(data: dict[str, Any], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    workers = data["workers"]
    width = 0.38
    xs = range(len(workers))
    for offset, design, label in (
        (-width / 2, "ours", "ours (one shared window)"),
        (width / 2, "private", "private copy per worker"),
    ):
        totals = [s["total_mib"] for s in data[design]]
        bars = ax.bar([x + offset for x in xs], totals, width, color=_COLORS[design], label=label)
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    factor, per_worker = TARGETS["pss_window_factor"], TARGETS["pss_worker_mib"]
    goal = [factor * data["window_mib"] + per_worker * w for w in workers]
    label = f"goal: {factor:g} x window + W x {per_worker:g} MiB"
    ax.plot(list(xs), goal, "k:", marker="_", label=label)
    ax.set_xticks(list(xs), [f"W = {w}" for w in workers])
    ax.set_ylabel("PSS of master + workers (MiB)")
    ax.set_title(f"Memory serving one {data['window_mib']:.0f} MiB window")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_http(data: dict[str, Any], path: Path) -> Path:
    runs = data["runs"]
    keys = sorted({(r["rows"], r["users"]) for r in runs})
    labels = [f"{rows:,} rows\n{users} users" for rows, users in keys]
    by = {(r["design"], r["rows"], r["users"]): r for r in runs}
    ceilings = data.get("wrk", {}).get("runs", [])
    by_wrk = {(r["design"], r["rows"], r["users"]): r for r in ceilings}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7.5))
    series: list[tuple[str, str, dict[Any, Any], str | None]]
    series = [(d, "Locust", by, None) for d in ("ours", "seed")]
    series += [(d, "wrk", by_wrk, "//") for d in ("ours", "seed") if ceilings]
    width = 0.8 / len(series)
    for slot, (design, tool, figures, hatch) in enumerate(series):
        rps = [figures[(design, *k)]["rps"] if (design, *k) in figures else 0 for k in keys]
        offset = (slot - (len(series) - 1) / 2) * width
        bars = top.bar(
            [i + offset for i in range(len(keys))],
            rps,
            width,
            color=_COLORS[design],
            hatch=hatch,
            alpha=0.6 if hatch else 1.0,
            label=f"{design} ({tool})",
        )
        top.bar_label(bars, fmt="%.0f", fontsize=7)
    top.set_yscale("log")
    top.set_ylabel("/predict req/s")
    top.set_xticks(range(len(keys)), labels, fontsize=8)
    top.set_title("HTTP /predict: throughput (Locust; hatched: wrk, the ceiling; same machine)")
    top.legend(fontsize=8)
    width = 0.13
    shades = {"p50_ms": 0.45, "p95_ms": 0.7, "p99_ms": 1.0}
    slot = 0
    for design in ("ours", "seed"):
        for pct, alpha in shades.items():
            values = [(by.get((design, *k)) or {}).get(pct) or 0 for k in keys]
            xs = [i + (slot - 2.5) * width for i in range(len(keys))]
            bottom.bar(
                xs, values, width, color=_COLORS[design], alpha=alpha, label=f"{design} {pct[:-3]}"
            )
            slot += 1
        # A run that completed nothing has no bar: say so where its bars would be.
        for i, k in enumerate(keys):
            if (design, *k) in by and (empty := no_answer(by[(design, *k)])):
                x = i + (1.5 if design == "seed" else -1.5) * width
                for axes in (top, bottom):
                    axes.annotate(
                        f"{design}: {empty}",
                        (x, 0.02),
                        xycoords=("data", "axes fraction"),
                        rotation=90,
                        fontsize=7,
                        color=_COLORS[design],
                        ha="center",
                        va="bottom",
                    )
    goal = TARGETS["http_p99_ms"]
    bottom.axhline(goal, color="grey", lw=0.8, ls=":", label=f"goal: p99 ≤ {goal:g} ms at 20 users")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xticks(range(len(keys)), labels, fontsize=8)
    bottom.set_title("HTTP /predict: latency percentiles")
    bottom.legend(fontsize=7, ncol=4)
    return save_figure(fig, path)


def plot_freshness(data: dict[str, Any], path: Path) -> Path:
    phases = {(d, p): figures for d, p, figures in freshness_phases(data)}
    cats = list(phases)
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    width = 0.27
    for offset, pct, alpha in ((-width, "p50", 0.55), (0.0, "p99", 1.0)):
        values = [judged(phases[c], pct)[0] or 0 for c in cats]
        colors = [_COLORS[d] for d, _ in cats]
        bars = ax.bar(
            [i + offset for i in range(len(cats))],
            values,
            width,
            color=colors,
            alpha=alpha,
            label=f"{pct}, event -> every worker",
        )
        ax.bar_label(bars, fmt="%.0f", fontsize=7)
    control = [phases[c].get("kafka_alone", {}).get("p99_ms") or 0 for c in cats]
    bars = ax.bar(
        [i + width for i in range(len(cats))],
        control,
        width,
        color="#bbbbbb",
        hatch="//",
        label="p99, bare Kafka consumer (control, same moment)",
    )
    ax.bar_label(bars, fmt="%.0f", fontsize=7)
    for phase, style in (("idle", ":"), ("load", "--")):
        goal = TARGETS[f"freshness_p99_{phase}_ms"]
        ax.axhline(goal, color="grey", lw=0.8, ls=style, label=f"goal: p99 <= {goal:g} ms {phase}")
    labels = ["\n".join((d, *p.split(", "))) for d, p in cats]
    ax.set_xticks(range(len(cats)), labels, fontsize=8)
    ax.set_ylabel("ms after the produce call")
    ax.set_title(
        f"Freshness at {data['rate_per_s']:g} events/s (light p50, dark p99, grey control;\n"
        "exact instants where the probe's check passed, else the probe's figures)"
    )
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_all(results: dict[str, Any], directory: Path) -> list[Path]:
    """Every plot the results allow, as ``compare-<part>.png`` in ``directory``."""
    plots = []
    makers = {
        "readpath": plot_readpath,
        "memory": plot_memory,
        "http": plot_http,
        "freshness": plot_freshness,
    }
    for part, maker in makers.items():
        data = results.get(part)
        if isinstance(data, dict) and "skipped" not in data:
            plots.append(maker(data, directory / f"compare-{part}.png"))
    return plots
