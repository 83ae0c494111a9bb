"""Preflight: before any load, ask the service what it needs and check that it accepts what
the run will send.

The seed report's run failed at 100 % because nobody checked one payload before sending
thousands. Here every process that runs users first waits for ``/readyz``, learns the model's
step and default length from real forecasts, then sends one request of each kind the run
will send (each time zone, the shortest and longest series, every invalid case) and checks
each answer. Any refusal stops the run before it starts, with the server's own words.
Requests go through :class:`~locustfiles._http.ServiceClient`, so they do not count in the
run's statistics.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from locustfiles._bad import BadCase
from locustfiles._checks import check_forecast, check_problem, describe_failure
from locustfiles._config import LoadConfig
from locustfiles._http import ServiceClient
from locustfiles._series import (
    ForecastRequest,
    Series,
    cached_request,
    parse_time_ns,
    real_request,
    synthetic_request,
)
from locustfiles.errors import PreflightError

__all__ = ["ServiceFacts", "discover", "preflight", "wait_ready"]

log = logging.getLogger(__name__)
_SHOWN = 6


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    """What the service told us: the model's step and the length of a ``{}`` forecast."""

    step_ns: int
    default_length: int


def wait_ready(client: ServiceClient, base_url: str, timeout_s: float) -> None:
    """Poll ``GET /readyz`` until 200; :class:`PreflightError` with the last reason after
    ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reply = client.request("GET", "/readyz")
            if reply.status == 200:
                return
            why = describe_failure(reply.status, reply.body)
        except OSError as exc:
            why = f"no answer ({exc})"
        if time.monotonic() >= deadline:
            raise PreflightError(
                f"the service at {base_url} is not ready after {timeout_s:g} s: {why}"
            )
        time.sleep(0.2)


def _forecast_times(client: ServiceClient, body: bytes) -> list[int]:
    reply = client.post_json("/predict", body)
    if reply.status != 200:
        raise PreflightError(
            f"POST /predict {body.decode()} -> {describe_failure(reply.status, reply.body)}"
        )
    predictions = reply.json().get("predictions")
    times = [parse_time_ns(p.get("time")) for p in predictions if isinstance(p, dict)]
    if not times or any(t is None for t in times):
        raise PreflightError(f"POST /predict {body.decode()} -> predictions without times")
    return [t for t in times if t is not None]


def discover(client: ServiceClient, config: LoadConfig) -> ServiceFacts:
    """The model's step (from two forecast steps) and the default forecast length."""
    default_length = len(_forecast_times(client, b"{}"))
    if config.max_inference_length >= 2:
        times = _forecast_times(client, b'{"inference_length":2}')
        step = times[1] - times[0]
    elif config.step_s is not None:
        step = config.step_s * 1_000_000_000
    else:
        raise PreflightError(
            "cannot learn the model's step with MAX_INFERENCE_LENGTH=1; set LOCUST_STEP_S"
        )
    if step <= 0:
        raise PreflightError(f"the service's forecasts do not advance in time (step {step} ns)")
    if config.step_s is not None and config.step_s * 1_000_000_000 != step:
        raise PreflightError(
            f"LOCUST_STEP_S={config.step_s} but the model forecasts every {step / 1e9:g} s; "
            "payloads on another step would all be refused"
        )
    return ServiceFacts(step_ns=step, default_length=default_length)


def _probes(
    config: LoadConfig, facts: ServiceFacts, series: Series | None
) -> list[ForecastRequest]:
    rng = random.Random(0)
    longest = config.max_inference_length
    probes = [cached_request(None), cached_request(longest)]
    if config.weight("synthetic"):
        for i, zone in enumerate(config.zones):
            rows = config.rows_max if i == 0 else config.rows_min
            probes.append(
                synthetic_request(
                    rng,
                    rows=rows,
                    step_ns=facts.step_ns,
                    zone=zone,
                    column=config.column,
                    inference_length=longest,
                )
            )
    if config.weight("real") and series is not None:
        rows_max = min(config.rows_max, series.longest_run)
        for rows in sorted({config.rows_min, rows_max}):
            probes.append(real_request(series, rng, rows=rows, inference_length=longest))
    return probes


def _check_ingest(client: ServiceClient, config: LoadConfig) -> str | None:
    reply = client.request("GET", "/cache")
    if reply.status != 200:
        return f"GET /cache -> {describe_failure(reply.status, reply.body)}"
    cache = reply.json()
    if cache.get("source") != "kafka":
        return (
            f"the ingest user measures Kafka -> /cache, but the service's window comes from "
            f"{cache.get('source')!r}, not Kafka"
        )
    if cache.get("topic") != config.kafka_topic:
        return f"KAFKA_TOPIC={config.kafka_topic!r} but the service reads {cache.get('topic')!r}"
    return None


def preflight(
    client: ServiceClient,
    base_url: str,
    config: LoadConfig,
    *,
    series: Series | None,
    cases: tuple[BadCase, ...],
    facts: ServiceFacts,
) -> int:
    """Send one request of every kind the run will send; raise :class:`PreflightError`
    listing each one the service answered wrongly. Returns the number of requests sent."""
    problems: list[str] = []
    sent = 0
    for req in _probes(config, facts, series):
        reply = client.post_json("/predict", req.encode())
        sent += 1
        verdict = check_forecast(
            req,
            reply.status,
            reply.header("X-Cache-Generation"),
            reply.body,
            step_ns=facts.step_ns,
            default_length=facts.default_length,
        )
        if not verdict.ok:
            zone = ""
            if req.mode == "synthetic":
                data = req.body["data"]
                assert isinstance(data, dict)
                first = next(iter(data.values()))
                zone = f", first time {first[0]!r}"
            rows = _rows(req)
            problems.append(f"{req.mode} payload ({rows} rows{zone}): {verdict.error}")
    for case in cases:
        reply = client.post_json("/predict", case.body, case.content_type)
        sent += 1
        error = check_problem(case, reply.status, reply.header("Content-Type"), reply.body)
        if error is not None:
            problems.append(f"bad case {error}")
    if config.weight("ingest"):
        sent += 1
        error = _check_ingest(client, config)
        if error is not None:
            problems.append(error)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        raise PreflightError(
            f"{base_url} refused {len(problems)} of {sent} preflight requests: "
            + "; ".join(problems[:_SHOWN])
            + more
        )
    log.info("preflight passed: %d requests answered as expected", sent)
    return sent


def _rows(req: ForecastRequest) -> int:
    data = req.body.get("data")
    if not isinstance(data, dict):
        return 0
    first: object = next(iter(data.values()), None)
    return len(first) if isinstance(first, list) else 0
