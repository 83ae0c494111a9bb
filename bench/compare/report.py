"""Markdown tables of a ``bench.compare`` result (``python -m bench.compare --markdown``),
for `docs/benchmarks.md`."""

from __future__ import annotations

from typing import Any

from bench._locust import no_answer
from bench.compare.goals import freshness_phases

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


def _share(run: dict[str, Any]) -> str:
    share = run.get("locust_cpu_share")
    return "-" if share is None else f"{share:.0%}"


def _times(run: dict[str, Any]) -> str:
    """A Locust run's p50 / p95 / p99, or that it completed nothing."""
    return no_answer(run) or f"{run['p50_ms']:g} / {run['p95_ms']:g} / {run['p99_ms']:g}"


def _ratio(ours: float, seed: float) -> str:
    return f"{ours / seed:.1f}x" if seed else "-"


def _http(data: dict[str, Any]) -> list[str]:
    runs = {(r["design"], r["rows"], r["users"]): r for r in data["runs"]}
    lines = [
        "| rows | users | ours req/s | ours p50 / p95 / p99 ms | seed req/s | "
        "seed p50 / p95 / p99 ms | ours / seed | Locust CPU (ours / seed runs) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in data["sizes"]:
        for users in data["users"]:
            o, s = runs[("ours", rows, users)], runs[("seed", rows, users)]
            lines.append(
                f"| {rows:,} | {users} | {o['rps']:,.0f} | {_times(o)} | {s['rps']:,.1f} | "
                f"{_times(s)} | {_ratio(o['rps'], s['rps'])} | {_share(o)} / {_share(s)} |"
            )
    return lines


def _wrk(data: dict[str, Any]) -> list[str]:
    """wrk's ceilings next to Locust's figures, per rows and connections (= users)."""
    ceilings = data.get("wrk", {})
    if "runs" not in ceilings:
        return [f"wrk ceilings not measured: {ceilings.get('skipped', 'no wrk figures')}"]
    wrk = {(r["design"], r["rows"], r["users"]): r for r in ceilings["runs"]}
    locust = {(r["design"], r["rows"], r["users"]): r for r in data["runs"]}
    lines = [
        "| rows | connections | ours req/s: wrk / Locust | ours wrk p50 / p99 ms | "
        "seed req/s: wrk / Locust | seed wrk p50 / p99 ms | ours / seed: wrk / Locust | "
        "wrk errors | CPU share against ours: wrk / Locust |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for rows in data["sizes"]:
        for users in data["users"]:
            o, s = wrk[("ours", rows, users)], wrk[("seed", rows, users)]
            lo, ls = locust[("ours", rows, users)], locust[("seed", rows, users)]
            errors = sum(r["non_2xx"] + r["socket_errors"] for r in (o, s))
            lines.append(
                f"| {rows:,} | {users} | {o['rps']:,.0f} / {lo['rps']:,.0f} | "
                f"{_num(o['p50_ms'], 1)} / {_num(o['p99_ms'], 1)} | "
                f"{s['rps']:,.1f} / {ls['rps']:,.1f} | "
                f"{_num(s['p50_ms'], 1)} / {_num(s['p99_ms'], 1)} | "
                f"{_ratio(o['rps'], s['rps'])} / {_ratio(lo['rps'], ls['rps'])} | {errors} | "
                f"{o['wrk_cpu_share']:.0%} / {_share(lo)} |"
            )
    return lines


def _mix(data: dict[str, Any]) -> list[str]:
    lines = [
        "| run | command | requests | failures | req/s | p50 / p95 / p99 ms | Locust CPU | "
        "Locust CPU per request |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in ("mix", "cached"):
        r = data[run]
        lines.append(
            f"| {run} | `{r['command']}` | {r['requests']:,} | {r['failures']} | "
            f"{r['rps']:,.0f} | {r['p50_ms']:g} / {r['p95_ms']:g} / {r['p99_ms']:g} | "
            f"{_share(r)} | {_num(r.get('locust_cpu_ms_per_request'), 2)} ms |"
        )
    return lines


def _freshness(data: dict[str, Any]) -> list[str]:
    lines = [
        "| design | phase | p50 ms | p99 ms | spread between workers p99 ms | "
        "bare Kafka consumer p50 / p99 ms (control) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for design, phase, r in freshness_phases(data):
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
    makers = {
        "readpath": _readpath,
        "memory": _memory,
        "http": _http,
        "wrk": _wrk,
        "freshness": _freshness,
        "mix": _mix,
    }
    for part, maker in makers.items():
        data = results.get("http" if part == "wrk" else part)
        if isinstance(data, dict) and "skipped" not in data:
            out += ["", f"<!-- {part} -->", *maker(data)]
    return "\n".join(out)
