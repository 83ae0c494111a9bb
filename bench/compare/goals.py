"""The goals of the comparison, checked against one run's results.

Each goal is ``{"goal", "target", "measured", "met"}``; ``met`` is None when the run did not
measure it (a part skipped, or quick sizes that do not reach the goal's size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench._common import difference_interval
from bench._locust import no_answer

__all__ = ["HTTP_RATIO", "MIX_TARGETS", "TARGETS", "check", "freshness_phases", "judged"]

TARGETS: dict[str, float] = {
    "read_unchanged_us": 5.0,
    "read_flatness": 1.5,
    "read_deep_copy_ratio_10M": 1_000.0,
    "pss_worker_mib": 60.0,
    "pss_window_factor": 1.2,
    "http_p99_ms": 20.0,
    "freshness_p99_idle_ms": 50.0,
    "freshness_p99_load_ms": 150.0,
}
# /predict throughput ours / seed at 20 users, per window rows.
HTTP_RATIO = {50: 2.5, 1_000_000: 6.0, 10_000_000: 100.0}
_USERS = 20
# The load test's default mix at 20 users (bench.compare.mix): its latency limits, and its
# throughput against a cached-only run right after it.
MIX_TARGETS = {"p95_ms": 50.0, "p99_ms": 100.0, "mix_over_cached": 0.6}


def _goal(goal: str, target: str, measured: str | None, met: bool | None) -> dict[str, Any]:
    return {"goal": goal, "target": target, "measured": measured, "met": met}


def _readpath(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not data:
        return [_goal("read path", "measured", None, None)]
    sizes, ours, seed = data["sizes"], data["us"]["ours"], data["us"]["seed"]
    worst = max(ours)
    flat = ours[-1] / ours[0]
    goals = [
        _goal(
            "read path, unchanged generation",
            "<= 5 µs at every size",
            f"max {worst:.2f} µs",
            worst <= TARGETS["read_unchanged_us"],
        ),
        _goal(
            "read path flat in size",
            f"{sizes[-1]:,} rows / {sizes[0]:,} rows <= 1.5",
            f"{flat:.2f}",
            flat <= TARGETS["read_flatness"],
        ),
    ]
    ratio = seed[-1] / ours[-1]
    reaches = sizes[-1] >= 10_000_000
    goals.append(
        _goal(
            "read path vs deep copy under a lock",
            ">= 1,000x at 10 M rows",
            f"{ratio:,.0f}x at {sizes[-1]:,} rows",
            ratio >= TARGETS["read_deep_copy_ratio_10M"] if reaches else None,
        )
    )
    return goals


def _memory(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not data:
        return [_goal("memory", "measured", None, None)]
    sample = max(data["ours"], key=lambda s: s["workers"])
    w = sample["workers"]
    bound = TARGETS["pss_window_factor"] * data["window_mib"] + w * TARGETS["pss_worker_mib"]
    private = next(s for s in data["private"] if s["workers"] == w)
    return [
        _goal(
            f"PSS of master + {w} workers, {data['window_mib']:.0f} MiB window",
            f"<= 1.2 x window + {w} x 60 MiB = {bound:,.0f} MiB",
            f"{sample['total_mib']:,.0f} MiB (private copies: {private['total_mib']:,.0f} MiB)",
            sample["total_mib"] <= bound if w == 8 and data["window_mib"] >= 1024 else None,
        )
    ]


def _p99(run: dict[str, Any]) -> str:
    """A Locust run's p99, or that it completed nothing."""
    return no_answer(run) or f"{run['p99_ms']:g} ms"


def _http(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not data:
        return [_goal("HTTP", "measured", None, None)]
    goals = []
    runs = {(r["design"], r["rows"], r["users"]): r for r in data["runs"]}
    for rows in data["sizes"]:
        ours, seed = runs.get(("ours", rows, _USERS)), runs.get(("seed", rows, _USERS))
        if ours is None or seed is None:
            continue
        target = HTTP_RATIO.get(rows)
        if seed["rps"]:
            ratio: float | None = ours["rps"] / seed["rps"]
            measured = f"{ratio:.1f}x ({ours['rps']:,.0f} vs {seed['rps']:,.1f} req/s)"
        else:
            # The seed design answered nothing: any throughput of ours is above it.
            ratio = float("inf") if ours["rps"] else None
            measured = f"{ours['rps']:,.0f} req/s vs seed: {no_answer(seed)}"
        goals.append(
            _goal(
                f"/predict throughput vs seed, {rows:,} rows, {_USERS} users",
                f">= {target:g}x" if target else "reported",
                measured,
                ratio >= target if target and ratio is not None else None,
            )
        )
        goals.append(
            _goal(
                f"/predict p99, {rows:,} rows, {_USERS} users",
                "<= 20 ms",
                f"{_p99(ours)} (seed: {_p99(seed)})",
                ours["p99_ms"] is not None
                and ours["p99_ms"] <= TARGETS["http_p99_ms"]
                and ours["failures"] == 0,
            )
        )
    return goals


def _ceiling(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The throughput goals again, measured by wrk: Locust's ratios at small windows are
    the generator's ceiling, wrk's are the servers'."""
    ceilings = (data or {}).get("wrk")
    if not data or not ceilings or "skipped" in ceilings:
        why = (ceilings or {}).get("skipped") or "no HTTP part"
        return [_goal(f"/predict throughput ceiling vs seed (wrk): {why}", "measured", None, None)]
    goals = []
    wrk = {(r["design"], r["rows"], r["users"]): r for r in ceilings["runs"]}
    locust = {(r["design"], r["rows"], r["users"]): r for r in data["runs"]}
    for rows in data["sizes"]:
        ours, seed = wrk.get(("ours", rows, _USERS)), wrk.get(("seed", rows, _USERS))
        if ours is None or seed is None:
            continue
        ratio = ours["rps"] / seed["rps"] if seed["rps"] else float("inf")
        errors = sum(r["non_2xx"] + r["socket_errors"] for r in (ours, seed))
        by_locust = locust.get(("ours", rows, _USERS))
        share = f"; Locust: {by_locust['rps']:,.0f} req/s" if by_locust else ""
        target = HTTP_RATIO.get(rows)
        goals.append(
            _goal(
                f"/predict throughput ceiling vs seed (wrk), {rows:,} rows, {_USERS} connections",
                f">= {target:g}x" if target else "reported",
                f"{ratio:.1f}x ({ours['rps']:,.0f} vs {seed['rps']:,.1f} req/s{share}; "
                f"{errors} errors)",
                ratio >= target and not errors if target else None,
            )
        )
    return goals


def _mix(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not data:
        return [_goal(f"load-test default mix, {_USERS} users", "measured", None, None)]
    mix, cached, users = data["mix"], data["cached"], data["users"]
    p95, p99 = MIX_TARGETS["p95_ms"], MIX_TARGETS["p99_ms"]
    ratio = data["mix_over_cached"]
    return [
        _goal(
            f"load-test default mix, {users} users, Locust on the same cores: `{mix['command']}`",
            f"0 failures, p95 <= {p95:g} ms, p99 <= {p99:g} ms",
            f"{mix['failures']} failures of {mix['requests']:,}, p95 {mix['p95_ms']:g} ms, "
            f"p99 {mix['p99_ms']:g} ms, {mix['rps']:,.0f} req/s, "
            f"Locust CPU {mix['locust_cpu_share']:.0%}",
            mix["failures"] == 0 and mix["p95_ms"] <= p95 and mix["p99_ms"] <= p99
            if users == _USERS
            else None,
        ),
        _goal(
            f"load-test mix / cached-only throughput, {users} users, cached-only right after "
            f"the mix: `{cached['command']}`",
            f">= {MIX_TARGETS['mix_over_cached']:g}",
            None
            if ratio is None
            else f"{ratio:.2f} ({mix['rps']:,.0f} vs {cached['rps']:,.0f} req/s; Locust CPU "
            f"{mix['locust_cpu_share']:.0%} / {cached['locust_cpu_share']:.0%})",
            None if ratio is None else ratio >= MIX_TARGETS["mix_over_cached"],
        ),
    ]


def judged(phase: Mapping[str, Any] | None, pct: str) -> tuple[float | None, str]:
    """The figure a freshness goal judges for one design and phase: the exact one (each
    process's own instants, every one passing the probe's check) when the run has it, else
    the probe's; and how to name it."""
    if not phase:
        return None, ""
    exact = phase.get("exact") or {}
    if exact.get(f"{pct}_ms") is not None and exact.get("violations") == 0:
        return exact[f"{pct}_ms"], "exact"
    return phase.get(f"{pct}_ms"), "probe"


def _over_kafka(ours: Mapping[str, Any], seed: Mapping[str, Any], pct: str) -> str:
    """Each design's exact figure less the bare consumer's, event by event, when both have
    it: what the design itself adds, free of Kafka's own swings between phases."""
    key = f"over_kafka_{pct}_ms"
    mine, theirs = (ours.get("exact") or {}).get(key), (seed.get("exact") or {}).get(key)
    if mine is None or theirs is None:
        return ""
    return f"; over Kafka alone {mine:g} / {theirs:g} ms"


def _freshness(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per phase: ours' p50 and p99 against the seed design's in the same run, and ours' p99
    against its absolute bound; each figure next to the probe's and to the bare Kafka
    consumer's at that moment.

    The comparisons judge the exact figures (:func:`bench.compare.freshness._exact`: the
    instant from which every process showed the event, checked by the probe) when both
    designs have them without a violation, else both designs' probe figures; the absolute
    bound judges ours' exact figure when it passed the check. The probe's own figure is late
    by its sampling, more for three workers than for one (docs/benchmarks.md, "Exact
    instants").

    At idle, when the run has it, the phase in which both designs ran at once on the same
    events (``side_by_side``) is judged too, on lines of its own: the designs' phases alone
    run one after the other, and Kafka's own latency moves between them by as much as either
    design adds to it; side by side, each design's CPU slows the other instead
    (docs/benchmarks.md, "Side by side"). Neither removes the other's doubt, so both are
    goals. The absolute bounds judge ours alone, as it is deployed."""
    if not data or "skipped" in data or "ours" not in data.get("designs", {}):
        return [_goal("freshness", "measured", None, None)]
    designs = data["designs"]
    goals = []
    for phase in ("idle", "load"):
        alone = designs["ours"][phase]
        side = (data.get("side_by_side") or {}).get(phase)
        for pct in ("p50", "p99"):
            goals.append(_against_seed(alone, designs.get("seed", {}).get(phase), pct, phase))
            if side:
                label, note = f"{phase}, side by side", _paired(side, pct)
                goals.append(
                    _against_seed(side["ours"], side["seed"], pct, label, note, paired=True)
                )
        bound = TARGETS[f"freshness_p99_{phase}_ms"]
        p99, kind = judged(alone, "p99")
        kafka = alone.get("kafka_alone", {})
        goals.append(
            _goal(
                f"freshness p99 ({phase}), event -> every worker",
                f"<= {bound:g} ms",
                None
                if p99 is None
                else f"{p99:g} ms {kind} (probe {alone.get('p99_ms')} ms; Kafka alone "
                f"{kafka.get('p99_ms', '-')} ms; {alone['missing']} of {alone['events']} missing)",
                None if p99 is None else _complete(alone) and p99 <= bound,
            )
        )
    return goals


def _complete(phase: Mapping[str, Any]) -> bool:
    """Every event of the phase was seen in every process, by the probe and exactly."""
    return not phase["missing"] and not (phase.get("exact") or {}).get("missing")


def _against_seed(
    ours: Mapping[str, Any],
    seed: Mapping[str, Any] | None,
    pct: str,
    label: str,
    note: str = "",
    *,
    paired: bool = False,
) -> dict[str, Any]:
    """The goal "ours' ``pct`` no later than the seed's" for one phase's figures (``note``
    ends the figures' parenthesis; ``paired``: both designs measured the same events, side
    by side)."""
    (mine, mine_kind), (theirs, theirs_kind) = judged(ours, pct), judged(seed, pct)
    kind = mine_kind if mine_kind == theirs_kind else "probe"
    if kind == "probe":
        mine, theirs = ours.get(f"{pct}_ms"), (seed or {}).get(f"{pct}_ms")
    measured = None
    if mine is not None and theirs is not None and seed is not None:
        kafka, theirs_kafka = ours.get("kafka_alone", {}), seed.get("kafka_alone", {})
        measured = (
            f"{mine:g} vs {theirs:g} ms {kind} (probe {ours.get(f'{pct}_ms')} / "
            f"{seed.get(f'{pct}_ms')} ms; Kafka alone {kafka.get(f'{pct}_ms', '-')} / "
            f"{theirs_kafka.get(f'{pct}_ms', '-')} ms"
            + (_over_kafka(ours, seed, pct) if kind == "exact" else "")
            + note
            + (_interval(ours, seed, pct, paired=paired) if kind == "exact" else "")
            + ")"
        )
    return _goal(
        f"freshness {pct} ({label}) vs seed, event -> every worker",
        "<= the seed design's, same run",
        measured,
        None
        if measured is None or mine is None or theirs is None
        else _complete(ours) and mine <= theirs,
    )


def _interval(ours: Mapping[str, Any], seed: Mapping[str, Any], pct: str, *, paired: bool) -> str:
    """The 95 % bootstrap interval of ours' exact ``pct`` less the seed's, from the events'
    latencies (:func:`bench._common.difference_interval`; ``paired``: the same events, side
    by side, in the same order). It is the spread of resampling these events as if each were
    independent: it covers neither the changes of Kafka's own latency between phases nor
    events that a stall delays together, so it is a lower bound of the uncertainty, rough at
    p99 (about six events of 600 make it). Empty when either design lacks its latencies."""
    mine = (ours.get("exact") or {}).get("latencies_ms") or []
    theirs = (seed.get("exact") or {}).get("latencies_ms") or []
    if paired:
        both = [
            (m, t) for m, t in zip(mine, theirs, strict=True) if m is not None and t is not None
        ]
        mine, theirs = [m for m, _ in both], [t for _, t in both]
    else:
        mine, theirs = [m for m in mine if m is not None], [t for t in theirs if t is not None]
    if not mine or not theirs:
        return ""
    low, high = difference_interval(mine, theirs, float(pct[1:]), paired=paired)
    return f"; ours' {pct} - the seed's, 95 % interval {low:+g} to {high:+g} ms"


def _paired(side: Mapping[str, Any], pct: str) -> str:
    """Ours' exact latency less the seed's, event by event, in the side-by-side phase."""
    paired = side.get("paired") or {}
    diff = paired.get(f"ours_minus_seed_{pct}_ms")
    if diff is None:
        return ""
    return f"; ours - seed event by event {diff:g} ms"


def freshness_phases(data: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """The freshness part's phases as (design, phase label, figures): each design alone,
    idle and under load, then ours and the seed side by side where the run has it."""
    rows = [(d, p, phases[p]) for d, phases in data["designs"].items() for p in ("idle", "load")]
    for phase, both in (data.get("side_by_side") or {}).items():
        rows += [(d, f"{phase}, side by side", both[d]) for d in ("ours", "seed")]
    return rows


def check(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal with its verdict for this run."""
    return [
        *_readpath(results.get("readpath")),
        *_memory(results.get("memory")),
        *_http(results.get("http")),
        *_ceiling(results.get("http")),
        *_freshness(results.get("freshness")),
        *_mix(results.get("mix")),
    ]
