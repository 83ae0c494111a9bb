"""The freshness goals judge the exact figures when both designs have them, checked."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bench._common import difference_interval
from bench.compare.goals import check


def _phase(probe: float, exact: float | None, violations: int = 0) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "events": 200,
        "missing": 0,
        "p50_ms": probe,
        "p99_ms": probe * 2,
        "kafka_alone": {"p50_ms": 5.0, "p99_ms": 20.0},
    }
    if exact is not None:
        figures["exact"] = {
            "missing": 0,
            "violations": violations,
            "checked": 1000,
            "p50_ms": exact,
            "p99_ms": exact * 2,
            "over_kafka_p50_ms": exact - 5.0,
            "over_kafka_p99_ms": exact * 2 - 20.0,
        }
    return figures


def _verdicts(ours: dict[str, Any], seed: dict[str, Any]) -> dict[str, Any]:
    results = {
        "freshness": {
            "designs": {"ours": {"idle": ours, "load": ours}, "seed": {"idle": seed, "load": seed}}
        }
    }
    return {
        g["goal"]: (g["met"], g["measured"])
        for g in check(results)
        if g["goal"].startswith("freshness p50 (idle)")
    }


def test_the_exact_figures_are_judged_when_both_designs_have_them() -> None:
    # The probe says ours is later (20 against 14 ms); the exact instants say it is not.
    verdicts = _verdicts(_phase(20.0, 11.0), _phase(14.0, 12.0))
    [(met, measured)] = verdicts.values()
    assert met is True
    assert measured.startswith("11 vs 12 ms exact (probe 20.0 / 14.0 ms")
    # What each design adds to the bare consumer, event by event, is shown beside it.
    assert measured.endswith("; over Kafka alone 6 / 7 ms)"), measured


def test_a_violation_or_a_missing_exact_figure_falls_back_to_the_probe() -> None:
    for ours, seed in (
        (_phase(20.0, 11.0, violations=1), _phase(14.0, 12.0)),
        (_phase(20.0, 11.0), _phase(14.0, None)),
    ):
        [(met, measured)] = _verdicts(ours, seed).values()
        assert met is False
        assert measured.startswith("20 vs 14 ms probe"), measured


def test_idle_is_judged_alone_and_side_by_side_when_the_run_has_both() -> None:
    # Alone, ours' phase met a slower Kafka (12 against 10 ms exact); side by side, on the
    # same events, ours is the earlier one. Each is a goal of its own.
    alone = {"ours": {"idle": _phase(14.0, 12.0), "load": _phase(14.0, 12.0)}}
    alone["seed"] = {"idle": _phase(12.0, 10.0), "load": _phase(20.0, 20.0)}
    side = {"ours": _phase(13.0, 9.0), "seed": _phase(12.0, 10.0)}
    side["paired"] = {"events": 200, "ours_minus_seed_p50_ms": -1.2, "ours_minus_seed_p99_ms": 3.0}
    results = {"freshness": {"designs": alone, "side_by_side": {"idle": side}}}
    verdicts = {g["goal"]: (g["met"], g["measured"]) for g in check(results)}
    met, measured = verdicts["freshness p50 (idle, side by side) vs seed, event -> every worker"]
    assert met is True
    assert measured.startswith("9 vs 10 ms exact"), measured
    assert measured.endswith("; ours - seed event by event -1.2 ms)"), measured
    met, measured = verdicts["freshness p50 (idle) vs seed, event -> every worker"]
    assert met is False and measured.startswith("12 vs 10 ms exact"), measured
    # Under load there is no side-by-side phase.
    assert not [g for g in verdicts if "(load, side by side)" in g]
    # The absolute bound judges ours alone (24 ms exact p99), as deployed.
    met, measured = verdicts["freshness p99 (idle), event -> every worker"]
    assert met is True and measured.startswith("24 ms exact"), measured
    # Without the side-by-side phase, only the phases alone are judged.
    del results["freshness"]["side_by_side"]
    verdicts = {g["goal"]: (g["met"], g["measured"]) for g in check(results)}
    assert not [g for g in verdicts if "side by side" in g]


def test_the_interval_of_a_difference_holds_zero_only_when_chance_could_explain_it() -> None:
    rng = np.random.default_rng(7)
    kafka = rng.gamma(2.0, 5.0, 600)  # what both designs wait for, event by event
    ours, seed = kafka + rng.gamma(2.0, 0.5, 600), kafka + rng.gamma(2.0, 0.5, 600)
    # A tail is known less well than a middle: p99 needs a larger shift to stand out.
    for q, shift in ((50.0, 3.0), (99.0, 15.0)):
        low, high = difference_interval(ours, seed, q, paired=False)
        assert low <= 0.0 <= high, (q, low, high)
        low, high = difference_interval(ours + shift, seed, q, paired=False)
        assert low > 0.0, (q, low, high)
    # The same events measured twice: resampling them together removes Kafka's share of the
    # spread, so the interval is narrower than if the two were independent.
    paired = difference_interval(ours, seed, 50.0, paired=True)
    apart = difference_interval(ours, seed, 50.0, paired=False)
    assert paired[1] - paired[0] < (apart[1] - apart[0]) / 2, (paired, apart)
    assert difference_interval(ours, seed, 50.0, paired=True) == paired  # seeded
    with pytest.raises(ValueError):
        difference_interval(ours, seed[:10], 50.0, paired=True)


def test_each_exact_comparison_shows_the_interval_of_its_difference() -> None:
    rng = np.random.default_rng(3)
    ours, seed = _phase(14.0, 9.0), _phase(12.0, 10.0)
    ours["exact"]["latencies_ms"] = [*rng.normal(9.0, 1.0, 300).round(1), None]
    seed["exact"]["latencies_ms"] = [*rng.normal(10.0, 1.0, 300).round(1), 12.0]
    [(met, measured)] = _verdicts(ours, seed).values()
    assert met is True
    interval = measured.rsplit("; ours' p50 - the seed's, 95 % interval ", 1)[1].rstrip(")")
    low, high = (float(x) for x in interval.removesuffix(" ms").split(" to "))
    assert low < high < 0.0, measured  # ours earlier by about 1 ms, beyond chance
    # Without the events' latencies there is nothing to resample: no interval.
    del ours["exact"]["latencies_ms"]
    [(_, measured)] = _verdicts(ours, seed).values()
    assert "interval" not in measured


def test_side_by_side_the_interval_resamples_the_same_events_together() -> None:
    # Each design missed a different event; the pairs left are those both saw, in order.
    rng = np.random.default_rng(5)
    kafka = rng.gamma(2.0, 5.0, 400)
    ours_ms: list[float | None] = [*(kafka + 1.0).round(1)]
    seed_ms: list[float | None] = [*(kafka + rng.gamma(2.0, 1.0, 400)).round(1)]
    ours_ms[3], seed_ms[7] = None, None
    side = {"ours": _phase(13.0, 9.0), "seed": _phase(12.0, 10.0)}
    side["ours"]["exact"]["latencies_ms"] = ours_ms
    side["seed"]["exact"]["latencies_ms"] = seed_ms
    alone = {d: {"idle": _phase(14.0, 12.0), "load": _phase(14.0, 12.0)} for d in ("ours", "seed")}
    results = {"freshness": {"designs": alone, "side_by_side": {"idle": side}}}
    verdicts = {g["goal"]: g["measured"] for g in check(results)}
    measured = verdicts["freshness p50 (idle, side by side) vs seed, event -> every worker"]
    kept = [i for i in range(400) if i not in (3, 7)]
    low, high = difference_interval(
        [ours_ms[i] or 0.0 for i in kept], [seed_ms[i] or 0.0 for i in kept], 50.0, paired=True
    )
    assert measured.endswith(f"; ours' p50 - the seed's, 95 % interval {low:+g} to {high:+g} ms)")
    # Kafka's share cancels out event by event: ours is earlier beyond the resampling's spread,
    # which resampling each design on its own would not show.
    assert high < 0.0, measured
    apart = difference_interval(
        [v for v in ours_ms if v is not None],
        [v for v in seed_ms if v is not None],
        50.0,
        paired=False,
    )
    assert apart[0] < 0.0 < apart[1], apart
