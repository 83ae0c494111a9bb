"""Response checks beyond the status code (pure logic: bytes in, verdict out).

A forecast is correct when it is a 200 JSON object with an integer ``generation`` equal to
the ``X-Cache-Generation`` header, a ``model_version``, a non-negative ``data_age_ms`` and
exactly ``inference_length`` finite predictions whose times continue the input's frequency:
the first one step after the last input time, then one step apart. An invalid request is
handled correctly when the answer is the documented 4xx as ``application/problem+json``
naming the expected field error; a 5xx is always wrong.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from locustfiles._bad import BadCase
from locustfiles._series import ForecastRequest, parse_time_ns

__all__ = [
    "PROBLEM_JSON",
    "Verdict",
    "cache_contains",
    "check_forecast",
    "check_problem",
    "describe_failure",
]

PROBLEM_JSON = "application/problem+json"
_SHOWN = 160


@dataclass(frozen=True, slots=True)
class Verdict:
    """``error`` is None for a correct answer; otherwise one line saying what was wrong."""

    error: str | None
    generation: int | None = None
    data_age_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe_failure(status: int, body: bytes | None) -> str:
    """``HTTP 422: <problem detail>`` (or the start of a non-problem body)."""
    detail = ""
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("detail"), str):
            detail = parsed["detail"]
        else:
            detail = body[:_SHOWN].decode("utf-8", "replace")
    if status == 0:
        return "no HTTP response (connection failed)"
    return f"HTTP {status}: {detail[:_SHOWN]}" if detail else f"HTTP {status}"


def _check_predictions(  # noqa: PLR0911, PLR0912 (one exit per broken rule)
    predictions: object, req: ForecastRequest, step_ns: int | None, length: int | None
) -> str | None:
    if not isinstance(predictions, list):
        return "predictions is not an array"
    if length is not None and len(predictions) != length:
        return f"{len(predictions)} predictions for inference_length {length}"
    if not predictions:
        return "no predictions"
    times: list[int] = []
    for i, item in enumerate(predictions):
        if not isinstance(item, dict):
            return f"predictions[{i}] is not an object"
        value = item.get("value")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            return f"predictions[{i}].value is not a finite number: {value!r}"
        ns = parse_time_ns(item.get("time"))
        if ns is None:
            return f"predictions[{i}].time is not an ISO-8601 time: {item.get('time')!r}"
        times.append(ns)
    step = step_ns
    if step is None and len(times) > 1:
        step = times[1] - times[0]
    if step is None:
        return None
    if step <= 0:
        return f"prediction times do not increase ({times[0]} then {times[1]} ns)"
    if req.last_time_ns is not None and times[0] != req.last_time_ns + step:
        return (
            f"first prediction is {(times[0] - req.last_time_ns) / 1e9:g} s after the last "
            f"input time, expected one step ({step / 1e9:g} s)"
        )
    for i in range(1, len(times)):
        if times[i] - times[i - 1] != step:
            return (
                f"predictions[{i}] is {(times[i] - times[i - 1]) / 1e9:g} s after the previous "
                f"one, expected {step / 1e9:g} s"
            )
    return None


def check_forecast(  # noqa: PLR0911 (one exit per broken rule)
    req: ForecastRequest,
    status: int,
    generation_header: str | None,
    body: bytes | None,
    *,
    step_ns: int | None = None,
    default_length: int | None = None,
) -> Verdict:
    """Check the answer to ``req``. ``step_ns`` (the model's step) overrides ``req.step_ns``
    when given; ``default_length`` is the server's length for a body without
    ``inference_length`` (None: any length)."""
    if status != 200:
        return Verdict(describe_failure(status, body))
    try:
        payload = json.loads(body or b"")
    except ValueError:
        return Verdict("200 with a body that is not JSON")
    if not isinstance(payload, dict):
        return Verdict("200 with a JSON body that is not an object")
    generation = _int(payload.get("generation"))
    if generation is None or generation < 1:
        return Verdict(
            f"generation missing or not a positive integer: {payload.get('generation')!r}"
        )
    if generation_header != str(generation):
        return Verdict(
            f"X-Cache-Generation {generation_header!r} differs from generation {generation}",
            generation,
        )
    age = _int(payload.get("data_age_ms"))
    if age is None or age < 0:
        return Verdict(
            f"data_age_ms missing or negative: {payload.get('data_age_ms')!r}", generation
        )
    version = payload.get("model_version")
    if not isinstance(version, str) or not version:
        return Verdict("model_version missing", generation, age)
    length = req.inference_length if req.inference_length is not None else default_length
    error = _check_predictions(
        payload.get("predictions"), req, step_ns if step_ns is not None else req.step_ns, length
    )
    return Verdict(error, generation, age)


def check_problem(  # noqa: PLR0911 (one exit per broken rule)
    case: BadCase, status: int, content_type: str | None, body: bytes | None
) -> str | None:
    """None when the server answered ``case`` as documented, else why not."""
    if status >= 500 or status == 0:
        return f"{case.name}: expected {case.status}, got {describe_failure(status, body)}"
    if status != case.status:
        return f"{case.name}: expected {case.status}, got {describe_failure(status, body)}"
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != PROBLEM_JSON:
        return f"{case.name}: {status} with Content-Type {content_type!r}, not {PROBLEM_JSON}"
    try:
        problem = json.loads(body or b"")
    except ValueError:
        return f"{case.name}: problem body is not JSON"
    if not isinstance(problem, dict):
        return f"{case.name}: problem body is not an object"
    missing = [k for k in ("type", "title", "detail") if not isinstance(problem.get(k), str)]
    if missing or not problem.get("detail"):
        return f"{case.name}: problem lacks {', '.join(missing) or 'a detail'}"
    if _int(problem.get("status")) != status:
        return f"{case.name}: problem status {problem.get('status')!r} differs from HTTP {status}"
    if case.code is not None:
        errors = problem.get("errors")
        codes = (
            [e.get("code") for e in errors if isinstance(e, dict)]
            if isinstance(errors, list)
            else []
        )
        if case.code not in codes:
            return f"{case.name}: expected field error {case.code!r}, got {codes}"
    return None


def cache_contains(cache: object, partition: int, offset: int, time_ns: int) -> bool:
    """True when a ``/cache`` answer shows a generation that consumed ``offset`` of
    ``partition`` and whose window reaches ``time_ns``."""
    if not isinstance(cache, dict):
        return False
    offsets = cache.get("offsets")
    if not isinstance(offsets, dict):
        return False
    consumed = offsets.get(str(partition))
    newest = parse_time_ns(cache.get("time_max"))
    return (
        isinstance(consumed, int) and consumed > offset and newest is not None and newest >= time_ns
    )
