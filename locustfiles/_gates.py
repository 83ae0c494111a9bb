"""SLO gates: limits from the environment, checked once at the end of a run (pure logic).

A gate is set by its variable; unset gates are not checked, except the two that make an
empty or failing run fail: ``LOCUST_MAX_FAIL_RATIO`` (default 0: any failure fails the run)
and ``LOCUST_MIN_REQUESTS`` (default 1). A gate whose measurement is missing (no ingest
samples, no forecast answered) fails: a limit nobody measured is not met.

=========================  ===========================================================
variable                   the run fails when
=========================  ===========================================================
LOCUST_MAX_FAIL_RATIO      failed / all requests (every request type) is above it
LOCUST_MIN_REQUESTS        fewer HTTP requests were made
LOCUST_AVG_MS              mean HTTP response time (ms) is above it
LOCUST_P50_MS              median HTTP response time (ms) is above it
LOCUST_P95_MS              95th percentile HTTP response time (ms) is above it
LOCUST_P99_MS              99th percentile HTTP response time (ms) is above it
LOCUST_MIN_RPS             HTTP requests per second are below it
LOCUST_MAX_DATA_AGE_MS     the largest ``data_age_ms`` of any forecast is above it
LOCUST_MAX_FRESHNESS_MS    the slowest Kafka -> ``/cache`` freshness (ingest) is above it
=========================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from locustfiles.errors import ConfigError

__all__ = ["Gate", "GateResult", "GateSpec", "RunSummary", "evaluate"]


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run measured. HTTP figures exclude the ingest freshness samples; ``None``
    means not measured."""

    requests: int
    failures: int
    http_requests: int
    rps: float
    avg_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_data_age_ms: int | None
    freshness_samples: int
    freshness_max_ms: float | None

    def line(self) -> str:
        age = "n/a" if self.max_data_age_ms is None else f"{self.max_data_age_ms} ms"
        fresh = (
            ""
            if self.freshness_max_ms is None
            else f", ingest freshness max {self.freshness_max_ms:.0f} ms"
            f" over {self.freshness_samples} events"
        )
        return (
            f"{self.http_requests} HTTP requests, {self.failures} failures of {self.requests}, "
            f"{self.rps:.1f} req/s, avg {self.avg_ms:.1f} ms, p50 {self.p50_ms:.0f} ms, "
            f"p95 {self.p95_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, max data age {age}{fresh}"
        )


Bound = Literal["max", "min"]


@dataclass(frozen=True, slots=True)
class Gate:
    """One limit: ``bound`` "max" fails above ``limit``, "min" below it."""

    variable: str
    label: str
    unit: str
    bound: Bound
    limit: float


# variable, label, unit, bound, default (None: unset = not checked)
_GATES: tuple[tuple[str, str, str, Bound, float | None], ...] = (
    ("LOCUST_MAX_FAIL_RATIO", "failure ratio", "", "max", 0.0),
    ("LOCUST_MIN_REQUESTS", "HTTP requests", "", "min", 1.0),
    ("LOCUST_AVG_MS", "mean latency", " ms", "max", None),
    ("LOCUST_P50_MS", "p50 latency", " ms", "max", None),
    ("LOCUST_P95_MS", "p95 latency", " ms", "max", None),
    ("LOCUST_P99_MS", "p99 latency", " ms", "max", None),
    ("LOCUST_MIN_RPS", "throughput", " req/s", "min", None),
    ("LOCUST_MAX_DATA_AGE_MS", "max data age", " ms", "max", None),
    ("LOCUST_MAX_FRESHNESS_MS", "ingest freshness", " ms", "max", None),
)


@dataclass(frozen=True, slots=True)
class GateSpec:
    gates: tuple[Gate, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GateSpec:
        """Read the gate variables (see the module docstring); raise :class:`ConfigError`
        naming the variable for a value that is not a finite non-negative number."""
        gates: list[Gate] = []
        for variable, label, unit, bound, default in _GATES:
            raw = environ.get(variable, "").strip()
            if not raw:
                if default is not None:
                    gates.append(Gate(variable, label, unit, bound, default))
                continue
            try:
                limit = float(raw)
            except ValueError:
                raise ConfigError(f"{variable} must be a number, got {raw!r}") from None
            if not math.isfinite(limit) or limit < 0:
                raise ConfigError(f"{variable} must be a finite number >= 0, got {raw!r}")
            if variable == "LOCUST_MAX_FAIL_RATIO" and limit > 1:
                raise ConfigError(f"{variable} is a ratio between 0 and 1, got {raw!r}")
            gates.append(Gate(variable, label, unit, bound, limit))
        return cls(tuple(gates))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: Gate
    value: float | None
    passed: bool
    note: str = ""

    def line(self) -> str:
        """``SLO gate FAILED: p99 latency 312 ms > 200 ms (LOCUST_P99_MS) by 112 ms (+56%)``."""
        g = self.gate
        limit = _fmt(g.limit)
        if self.value is None:
            return (
                f"SLO gate FAILED: {g.label} was not measured ({g.variable}={limit}{g.unit})"
                f"{'; ' + self.note if self.note else ''}"
            )
        value = _fmt(self.value)
        if self.passed:
            sign = "<=" if g.bound == "max" else ">="
            return f"SLO gate ok: {g.label} {value}{g.unit} {sign} {limit}{g.unit} ({g.variable})"
        sign = ">" if g.bound == "max" else "<"
        excess = abs(self.value - g.limit)
        pct = f" ({(self.value - g.limit) / g.limit:+.0%})" if g.limit > 0 else ""
        note = f"; {self.note}" if self.note else ""
        return (
            f"SLO gate FAILED: {g.label} {value}{g.unit} {sign} {limit}{g.unit} ({g.variable}) "
            f"by {_fmt(excess)}{g.unit}{pct}{note}"
        )


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"


def _measure(variable: str, s: RunSummary) -> tuple[float | None, str]:
    http = s.http_requests > 0
    none = "no HTTP requests"
    measured: dict[str, tuple[float | None, str]] = {
        "LOCUST_MAX_FAIL_RATIO": (
            s.failures / s.requests if s.requests else 0.0,
            f"{s.failures} of {s.requests} requests failed",
        ),
        "LOCUST_MIN_REQUESTS": (float(s.http_requests), ""),
        "LOCUST_AVG_MS": (s.avg_ms, "") if http else (None, none),
        "LOCUST_P50_MS": (s.p50_ms, "") if http else (None, none),
        "LOCUST_P95_MS": (s.p95_ms, "") if http else (None, none),
        "LOCUST_P99_MS": (s.p99_ms, "") if http else (None, none),
        "LOCUST_MIN_RPS": (s.rps, ""),
        "LOCUST_MAX_DATA_AGE_MS": (None, "no forecast was answered")
        if s.max_data_age_ms is None
        else (float(s.max_data_age_ms), ""),
        "LOCUST_MAX_FRESHNESS_MS": (
            s.freshness_max_ms,
            f"{s.freshness_samples} events"
            if s.freshness_max_ms is not None
            else "no ingest samples (set LOCUST_WEIGHT_INGEST and Kafka)",
        ),
    }
    return measured[variable]


def evaluate(spec: GateSpec, summary: RunSummary) -> list[GateResult]:
    """One result per configured gate, in the order of the table above."""
    results: list[GateResult] = []
    for gate in spec.gates:
        value, note = _measure(gate.variable, summary)
        if value is None:
            results.append(GateResult(gate, None, False, note))
            continue
        passed = value <= gate.limit if gate.bound == "max" else value >= gate.limit
        results.append(GateResult(gate, value, passed, note if not passed else ""))
    return results
