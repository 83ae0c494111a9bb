"""Markdown tables of a ``bench.compare`` result (``python -m bench.compare --markdown``),
for `docs/benchmarks.md`."""

from __future__ import annotations

from typing import Any

__all__ = ["goals_table", "markdown"]

_VERDICT = {True: "met", False: "**missed**", None: "not measured"}


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def goals_table(results: dict[str, Any]) -> list[str]:
    """The goals and their verdicts (also what ``python -m bench.compare`` prints)."""
    lines = ["| goal | target | measured | verdict |", "|---|---|---|---|"]
    for g in results["goals"]:
        lines.append(
            f"| {g['goal']} | {g['target']} | {g['measured'] or '-'} | {_VERDICT[g['met']]} |"
        )
    return lines


def _readpath(data: dict[str, Any]) -> list[str]:
    names = {
        "ours": "ours, unchanged",
        "ours_new_generation": "ours, new generation (once)",
        "seed": "seed: deep copy + lock",
        "private": "private caches",
        "redis": "Redis GET + unpickle",
    }
    lines = ["| rows | " + " | ".join(names.values()) + " |", "|---:" * (len(names) + 1) + "|"]
    for i, rows in enumerate(data["sizes"]):
        cells = [_num(data["us"][d][i], 2 if d in ("ours", "private") else 0) for d in names]
        lines.append(f"| {rows:,} | " + " | ".join(cells) + " |")
    return lines


def _memory(data: dict[str, Any]) -> list[str]:
    lines = [
        "| workers | ours: master + workers | ours: per worker (with its share of the window) "
        "| private copies: master + workers |",
        "|---:|---:|---:|---:|",
    ]
    for ours, private in zip(data["ours"], data["private"], strict=True):
        per = f"{min(ours['per_worker_mib']):,.0f}-{max(ours['per_worker_mib']):,.0f}"
        lines.append(
            f"| {ours['workers']} | {ours['total_mib']:,.0f} | {per} "
            f"| {private['total_mib']:,.0f} |"
        )
    return lines


def _http(data: dict[str, Any]) -> list[str]:
    runs = {(r["design"], r["rows"], r["users"]): r for r in data["runs"]}
    lines = [
        "| rows | users | ours req/s | ours p50 / p95 / p99 ms | seed req/s | "
        "seed p50 / p95 / p99 ms | ours / seed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in data["sizes"]:
        for users in data["users"]:
            o, s = runs[("ours", rows, users)], runs[("seed", rows, users)]
            lines.append(
                f"| {rows:,} | {users} | {o['rps']:,.0f} | "
                f"{o['p50_ms']:g} / {o['p95_ms']:g} / {o['p99_ms']:g} | {s['rps']:,.1f} | "
                f"{s['p50_ms']:g} / {s['p95_ms']:g} / {s['p99_ms']:g} | "
                f"{o['rps'] / s['rps']:.1f}x |"
            )
    return lines


def _freshness(data: dict[str, Any]) -> list[str]:
    lines = [
        "| design | phase | p50 ms | p99 ms | spread between workers p99 ms | "
        "bare Kafka consumer p50 / p99 ms (control) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for design, phases in data["designs"].items():
        for phase in ("idle", "load"):
            r = phases[phase]
            control = r.get("kafka_alone", {})
            lines.append(
                f"| {design} | {phase} | {_num(r.get('p50_ms'), 1)} | {_num(r.get('p99_ms'), 1)}"
                f" | {_num(r.get('spread_p99_ms'), 1)} | {_num(control.get('p50_ms'), 1)} / "
                f"{_num(control.get('p99_ms'), 1)} |"
            )
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The goals and every measured part as Markdown tables."""
    out = goals_table(results)
    makers = {"readpath": _readpath, "memory": _memory, "http": _http, "freshness": _freshness}
    for part, maker in makers.items():
        data = results.get(part)
        if isinstance(data, dict) and "skipped" not in data:
            out += ["", f"<!-- {part} -->", *maker(data)]
    return "\n".join(out)
