"""Verdicts (pure logic): the checks of each answer beyond its status code, and the SLO
gates that judge a run (limits from the environment; ``docs/load-testing.md`` lists them).
A gate whose figure was not measured (no ingest sample, no forecast answered) fails.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Annotated, Any, NamedTuple

import numpy as np
from pydantic import AfterValidator, Field, create_model

from contract.settings import EnvSettings
from locustfiles._config import settings_from_env
from locustfiles._cpu import CpuUsage
from locustfiles._payloads import BadCase, ForecastRequest, parse_time_ns

PROBLEM_JSON = "application/problem+json"
_SHOWN = 160


@dataclass(frozen=True, slots=True)
class Verdict:
    """``error`` is None for a right answer, else one line saying what was wrong."""

    error: str | None
    generation: int | None = None
    data_age_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _object(body: bytes | None) -> dict[str, Any] | None:
    try:
        parsed = json.loads(body or b"")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def describe_failure(status: int, body: bytes | None) -> str:
    """``HTTP 422: <problem detail>`` (or the start of a body that is not a problem)."""
    if status == 0:
        return "no HTTP response (connection failed)"
    detail = (_object(body) or {}).get("detail")
    if not isinstance(detail, str):
        detail = (body or b"")[:_SHOWN].decode("utf-8", "replace")
    return f"HTTP {status}: {detail[:_SHOWN]}" if detail else f"HTTP {status}"


def _check_predictions(  # noqa: PLR0911, PLR0912 (one exit per broken rule)
    predictions: object, last_ns: int | None, step: int | None, length: int | None
) -> str | None:
    if not isinstance(predictions, list):
        return "predictions is not an array"
    if length is not None and len(predictions) != length:
        return f"{len(predictions)} predictions for inference_length {length}"
    times: list[int] = []
    for i, item in enumerate(predictions):
        if not isinstance(item, dict):
            return f"predictions[{i}] is not an object"
        value, ns = item.get("value"), parse_time_ns(item.get("time"))
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            return f"predictions[{i}].value is not a finite number: {value!r}"
        if ns is None:
            return f"predictions[{i}].time is not an ISO-8601 time: {item.get('time')!r}"
        times.append(ns)
    if not times:
        return "no predictions"
    if step is None and len(times) > 1:
        step = times[1] - times[0]
    if step is None:
        return None
    if step <= 0:
        return f"prediction times do not increase ({times[0]} then {times[1]} ns)"
    step_s = f"{step / 1e9:g} s"
    if last_ns is not None and times[0] != last_ns + step:
        after = f"{(times[0] - last_ns) / 1e9:g} s"
        return (
            f"first prediction is {after} after the last input time, expected one step ({step_s})"
        )
    for i in range(1, len(times)):
        if (gap := times[i] - times[i - 1]) != step:
            return f"predictions[{i}] is {gap / 1e9:g} s after the previous one, expected {step_s}"
    return None


def check_forecast(
    req: ForecastRequest,
    status: int,
    generation_header: str | None,
    body: bytes | None,
    *,
    step_ns: int | None = None,
    default_length: int | None = None,
) -> Verdict:
    """Right: a 200 JSON object whose integer ``generation`` equals the header, with a
    ``model_version``, a non-negative ``data_age_ms``, the ``series_id`` the body named (if
    it named one) and exactly ``inference_length`` (else ``default_length``, None: any)
    finite predictions one step (``step_ns``, else ``req.step_ns``) apart, the first one step
    after the last input time."""
    if status != 200:
        return Verdict(describe_failure(status, body))
    payload = _object(body)
    if payload is None:
        return Verdict("200 with a body that is not JSON (or not an object)")
    generation, age = _int(payload.get("generation")), _int(payload.get("data_age_ms"))
    version = payload.get("model_version")
    error: str | None
    if generation is None or generation < 1:
        error = f"generation missing or not a positive integer: {payload.get('generation')!r}"
    elif generation_header != str(generation):
        error = f"X-Cache-Generation {generation_header!r} differs from generation {generation}"
    elif age is None or age < 0:
        error = f"data_age_ms missing or negative: {payload.get('data_age_ms')!r}"
    elif not isinstance(version, str) or not version:
        error = "model_version missing"
    elif "series_id" in req.body and payload.get("series_id") != req.body["series_id"]:
        error = f"series_id {payload.get('series_id')!r} answered for {req.body['series_id']!r}"
    else:
        error = _check_predictions(
            payload.get("predictions"),
            req.last_time_ns,
            req.step_ns if step_ns is None else step_ns,
            default_length if req.inference_length is None else req.inference_length,
        ) or _check_quantiles(payload.get("predictions"), req.quantiles)
    return Verdict(error, generation, age)


def quantile_key(level: float) -> str:
    """The key the API gives a level: its shortest decimal, never in exponent form."""
    return str(np.format_float_positional(level, trim="-"))


def _check_quantiles(predictions: object, levels: tuple[float, ...]) -> str | None:
    """None when every prediction carries exactly the ``levels`` (by their decimal keys),
    finite and never lower for a higher level; else why not."""
    if not levels:
        return None
    assert isinstance(predictions, list)  # checked by _check_predictions
    keys = [quantile_key(level) for level in sorted(levels)]
    for i, item in enumerate(predictions):
        bounds = item.get("quantiles")
        if not isinstance(bounds, dict) or sorted(bounds) != sorted(keys):
            return f"predictions[{i}].quantiles has keys {bounds and list(bounds)}, not {keys}"
        values = [bounds[key] for key in keys]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
            return f"predictions[{i}].quantiles holds a value that is not a finite number"
        if any(b < a for a, b in pairwise(values)):
            return f"predictions[{i}].quantiles decrease with the level: {values}"
    return None


def check_problem(  # noqa: PLR0911 (one exit per broken rule)
    case: BadCase, status: int, content_type: str | None, body: bytes | None
) -> str | None:
    """None when the server answered ``case`` as documented (its status as problem+json,
    with the expected field error), else why not; a 5xx is always wrong."""
    if status != case.status:
        return f"{case.name}: expected {case.status}, got {describe_failure(status, body)}"
    if (content_type or "").split(";", 1)[0].strip().lower() != PROBLEM_JSON:
        return f"{case.name}: {status} with Content-Type {content_type!r}, not {PROBLEM_JSON}"
    problem = _object(body)
    if problem is None:
        return f"{case.name}: problem body is not JSON (or not an object)"
    missing = [k for k in ("type", "title", "detail") if not isinstance(problem.get(k), str)]
    if missing or not problem.get("detail"):
        return f"{case.name}: problem lacks {', '.join(missing) or 'a detail'}"
    if _int(problem.get("status")) != status:
        return f"{case.name}: problem status {problem.get('status')!r} differs from HTTP {status}"
    errors = problem["errors"] if isinstance(problem.get("errors"), list) else []
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    if case.code is not None and case.code not in codes:
        return f"{case.name}: expected field error {case.code!r}, got {codes}"
    return None


def cache_contains(cache: object, partition: int, offset: int, time_ns: int) -> bool:
    """True when a ``/cache`` answer shows a generation that consumed ``offset`` of
    ``partition`` and whose window reaches ``time_ns``."""
    offsets = cache.get("offsets") if isinstance(cache, dict) else None
    consumed = offsets.get(str(partition)) if isinstance(offsets, dict) else None
    newest = parse_time_ns(cache.get("time_max")) if isinstance(cache, dict) else None
    reached = newest is not None and newest >= time_ns
    return isinstance(consumed, int) and consumed > offset and reached


# variable: label, unit, bound, default (None: unset = not checked), RunSummary figure
_GATES: dict[str, tuple[str, str, str, float | None, str]] = {
    "LOCUST_MAX_FAIL_RATIO": ("failure ratio", "", "max", 0.0, "fail_ratio"),
    "LOCUST_MIN_REQUESTS": ("HTTP requests", "", "min", 1.0, "http_requests"),
    "LOCUST_AVG_MS": ("mean latency", " ms", "max", None, "avg_ms"),
    "LOCUST_P50_MS": ("p50 latency", " ms", "max", None, "p50_ms"),
    "LOCUST_P95_MS": ("p95 latency", " ms", "max", None, "p95_ms"),
    "LOCUST_P99_MS": ("p99 latency", " ms", "max", None, "p99_ms"),
    "LOCUST_MIN_RPS": ("throughput", " req/s", "min", None, "rps"),
    "LOCUST_MAX_DATA_AGE_MS": ("max data age", " ms", "max", None, "max_data_age_ms"),
    "LOCUST_MAX_FRESHNESS_MS": ("ingest freshness", " ms", "max", None, "freshness_max_ms"),
}
_MEANINGS = {  # what the docs say of each gate variable
    "LOCUST_MAX_FAIL_RATIO": "the run fails when failed / all requests is above it",
    "LOCUST_MIN_REQUESTS": "the run fails when fewer HTTP requests were made",
    "LOCUST_AVG_MS": "the run fails when the mean HTTP latency (ms) is above it",
    "LOCUST_P50_MS": "the run fails when the median HTTP latency (ms) is above it",
    "LOCUST_P95_MS": "the run fails when the 95th percentile HTTP latency (ms) is above it",
    "LOCUST_P99_MS": "the run fails when the 99th percentile HTTP latency (ms) is above it",
    "LOCUST_MIN_RPS": "the run fails when HTTP requests per second are below it",
    "LOCUST_MAX_DATA_AGE_MS": "the run fails when any forecast's `data_age_ms` is above it "
    "(or no forecast was answered)",
    "LOCUST_MAX_FRESHNESS_MS": "the run fails when the slowest Kafka → `/cache` freshness (ms) "
    "is above it (or there was no ingest sample)",
}
_UNMEASURED = {
    "max_data_age_ms": "no forecast was answered",
    "freshness_max_ms": "no ingest samples (set LOCUST_WEIGHT_INGEST and Kafka)",
}


def _ratio(value: float | None) -> float | None:
    if value is not None and value > 1:
        raise ValueError("is a ratio between 0 and 1")
    return value


_Ratio = Annotated[float | None, AfterValidator(_ratio)]
_LIMITS: dict[str, Any] = {  # an optional, finite, non-negative number per gate variable
    variable: (
        _Ratio if variable == "LOCUST_MAX_FAIL_RATIO" else float | None,
        Field(
            default,
            ge=0.0,
            allow_inf_nan=False,
            validation_alias=variable,
            description=_MEANINGS[variable],
        ),
    )
    for variable, (*_, default, _figure) in _GATES.items()
}
GateLimits = create_model(
    "GateLimits",
    __base__=EnvSettings,
    __doc__="The SLO gates' limits, one field per variable (unset: the gate is off).",
    **_LIMITS,
)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a run measured; HTTP figures leave out the ingest samples, None = not measured."""

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
    locust_cpu: CpuUsage | None = None  # the load generator's own CPU over the run

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
            + ("" if self.locust_cpu is None else f"; {self.locust_cpu.line()}")
        )

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON values, the generator's CPU flattened into them (with its CPU
        milliseconds per HTTP request)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "locust_cpu"}
        if self.locust_cpu is not None:
            out.update(self.locust_cpu.as_dict())
            per = self.locust_cpu.cpu_s * 1000 / self.http_requests if self.http_requests else None
            out["locust_cpu_ms_per_request"] = None if per is None else round(per, 3)
        return out

    def measure(self, figure: str) -> tuple[float | None, str]:
        """A figure (None: not measured) and the note a failed gate on it prints."""
        if figure == "fail_ratio":
            ratio = self.failures / self.requests if self.requests else 0.0
            return ratio, f"{self.failures} of {self.requests} requests failed"
        latency = figure in ("avg_ms", "p50_ms", "p95_ms", "p99_ms")
        value = None if latency and not self.http_requests else getattr(self, figure)
        if value is None:
            return None, _UNMEASURED.get(figure, "no HTTP requests")
        return float(value), f"{self.freshness_samples} events" if "fresh" in figure else ""


class Gate(NamedTuple):
    """One limit; its label, unit and bound (max or min) are those of its variable."""

    variable: str
    limit: float


@dataclass(frozen=True, slots=True)
class GateSpec:
    gates: tuple[Gate, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GateSpec:
        """The gates set in ``environ`` (and the two defaults); :class:`ConfigError` names a
        variable that is not a finite non-negative number."""
        limits = settings_from_env(GateLimits, environ)
        gates = (Gate(v, getattr(limits, v)) for v in _GATES if getattr(limits, v) is not None)
        return cls(tuple(gates))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: Gate
    value: float | None
    passed: bool
    note: str = ""

    def line(self) -> str:
        """``SLO gate FAILED: p99 latency 312 ms > 200 ms (LOCUST_P99_MS) by 112 ms (+56%)``."""
        variable, limit = self.gate
        label, unit, bound, *_ = _GATES[variable]
        note = f"; {self.note}" if self.note else ""
        if self.value is None:
            return f"SLO gate FAILED: {label} was not measured ({variable}={limit:g}{unit}){note}"
        ok_sign, failed_sign = ("<=", ">") if bound == "max" else (">=", "<")
        sign = ok_sign if self.passed else failed_sign
        head = f"{label} {_fmt(self.value)}{unit} {sign} {_fmt(limit)}{unit} ({variable})"
        if self.passed:
            return f"SLO gate ok: {head}"
        pct = f" ({(self.value - limit) / limit:+.0%})" if limit > 0 else ""
        return f"SLO gate FAILED: {head} by {_fmt(abs(self.value - limit))}{unit}{pct}{note}"


def _fmt(x: float) -> str:
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4f}" if abs(x) < 1 else f"{x:.1f}"


def evaluate(spec: GateSpec, summary: RunSummary) -> list[GateResult]:
    """One result per configured gate, in the order of ``_GATES``."""
    results = []
    for gate in spec.gates:
        _, _, bound, _, figure = _GATES[gate.variable]
        value, note = summary.measure(figure)
        ok = value is not None and (value <= gate.limit if bound == "max" else value >= gate.limit)
        results.append(GateResult(gate, value, ok, "" if ok else note))
    return results
