"""Preflight: before any load, learn what the service needs and check that it accepts what
the run will send (the seed report's run failed at 100 % because nobody sent one payload
first). Its requests go through a ``requests`` session, outside Locust's statistics."""

from __future__ import annotations

import logging
import random
import time
from functools import partial
from typing import NamedTuple

import requests

from locustfiles._config import LoadConfig
from locustfiles._errors import PreflightError
from locustfiles._payloads import (
    JSON,
    BadCase,
    EncodedRequest,
    ForecastRequest,
    Series,
    bad_cases,
    cached_request,
    load_series,
    parse_time_ns,
    real_request,
    series_request,
    synthetic_request,
)
from locustfiles._verdicts import check_forecast, check_problem, describe_failure

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
_SHOWN = 6


class Prepared(NamedTuple):
    """What the preflight learnt and prepared for the users of a process: ``keyed`` holds
    one encoded ``{"series_id": id}`` body per series id read from ``GET /series``."""

    step_ns: int
    default_length: int
    series: Series | None
    cases: tuple[BadCase, ...]
    keyed: tuple[EncodedRequest, ...] = ()


def preflight(host: str | None, config: LoadConfig) -> Prepared:
    """Wait for ``/readyz``, learn the model's step and default length from two forecasts,
    then send one request of every kind the run will send (each zone, the shortest and the
    longest series, every invalid case) and check each answer. :class:`PreflightError` (or
    :class:`SeriesError`) says what is wrong, in the service's own words when it refused."""
    if not (host or "").startswith(("http://", "https://")):
        raise PreflightError(f"no service: give --host http://<service>, not {host!r}")
    with requests.Session() as session:
        url = str(host).rstrip("/")
        _wait_ready(session, url, config.ready_timeout_s)
        ids = _series_ids(session, url, config.series_max) if config.weight("series") else ()
        step, default_length = _discover(session, url, config, ids[0] if ids else None)
        series = load_series(config) if config.weight("real") else None
        cases: tuple[BadCase, ...] = ()
        if config.weight("bad"):
            limits = {"max_rows": config.max_rows, "max_body_bytes": config.max_body_bytes}
            cases = bad_cases(rows=config.rows_min, step_ns=step, column=config.column, **limits)
        keyed = tuple(EncodedRequest.of(series_request(sid, None)) for sid in ids)
        prepared = Prepared(step, default_length, series, cases, keyed)
        _probe(session, url, config, prepared)
    log.info(
        "service at %s: model step %g s, default forecast length %d",
        host,
        step / 1e9,
        default_length,
    )
    return prepared


def _post(session: requests.Session, url: str, body: bytes, ctype: str = JSON) -> requests.Response:
    headers = {"Content-Type": ctype}
    return session.post(f"{url}/predict", data=body, headers=headers, timeout=TIMEOUT_S)


def _wait_ready(session: requests.Session, url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reply = session.get(f"{url}/readyz", timeout=TIMEOUT_S)
            if reply.status_code == 200:
                return
            why = describe_failure(reply.status_code, reply.content)
        except OSError as exc:
            why = f"no answer ({exc})"
        if time.monotonic() >= deadline:
            raise PreflightError(f"the service at {url} is not ready after {timeout_s:g} s: {why}")
        time.sleep(0.2)


def _series_ids(session: requests.Session, url: str, most: int) -> tuple[str, ...]:
    """The first ``most`` series ids of the window, page by page from ``GET /series``."""
    ids: list[str] = []
    after: str | None = None
    while len(ids) < most:
        params = {"limit": str(min(1000, most - len(ids)))}
        if after is not None:
            params["after"] = after
        reply = session.get(f"{url}/series", params=params, timeout=TIMEOUT_S)
        if reply.status_code != 200:
            failure = describe_failure(reply.status_code, reply.content)
            raise PreflightError(f"GET /series -> {failure}")
        page = reply.json()
        ids += [item["series_id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    if not ids:
        raise PreflightError("the series user has nothing to ask for: GET /series lists none")
    log.info("series: %d series ids read from GET /series", len(ids))
    return tuple(ids)


def _forecast_times(session: requests.Session, url: str, body: bytes) -> list[int]:
    reply = _post(session, url, body)
    if reply.status_code != 200:
        failure = describe_failure(reply.status_code, reply.content)
        raise PreflightError(f"POST /predict {body.decode()} -> {failure}")
    items = reply.json().get("predictions") or []
    times = [parse_time_ns(p.get("time")) if isinstance(p, dict) else None for p in items]
    if not times or None in times:
        raise PreflightError(f"POST /predict {body.decode()} -> predictions without times")
    return [t for t in times if t is not None]


def _discover(
    session: requests.Session, url: str, config: LoadConfig, series_id: str | None
) -> tuple[int, int]:
    """The model's step (from two forecast steps) and the default forecast length, from the
    window's forecast (of ``series_id`` when given: a window of many series needs one)."""
    encoded = EncodedRequest.of(
        cached_request(None) if series_id is None else series_request(series_id, None)
    )
    default_length = len(_forecast_times(session, url, encoded.with_length(None)[1]))
    step = (config.step_s or 0) * 1_000_000_000
    if config.max_inference_length >= 2:
        times = _forecast_times(session, url, encoded.with_length(2)[1])
        step = times[1] - times[0]
    elif not step:
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
    return step, default_length


def _probes(config: LoadConfig, prepared: Prepared) -> list[ForecastRequest]:
    rng, longest, column = random.Random(0), config.max_inference_length, config.column
    probes = [cached_request(None), cached_request(longest)] if config.weight("cached") else []
    if prepared.keyed:  # the first and last ids, and a few at random
        count = len(prepared.keyed)
        picks = {0, count - 1, *rng.sample(range(count), min(3, count))}
        probes += [prepared.keyed[i].with_length(longest)[0] for i in sorted(picks)]
    synthetic = partial(synthetic_request, rng, step_ns=prepared.step_ns, column=column)
    for i, zone in enumerate(config.zones if config.weight("synthetic") else ()):
        rows = config.rows_max if i == 0 else config.rows_min
        probes.append(synthetic(rows=rows, zone=zone, inference_length=longest))
    if series := prepared.series:
        for rows in sorted({config.rows_min, min(config.rows_max, series.longest_run)}):
            probes.append(real_request(series, rng, rows=rows, inference_length=longest))
    return probes


def _probe(session: requests.Session, url: str, config: LoadConfig, prepared: Prepared) -> None:
    problems: list[str] = []
    probes = _probes(config, prepared)
    for req in probes:
        reply = _post(session, url, req.encode())
        verdict = check_forecast(
            req,
            reply.status_code,
            reply.headers.get("X-Cache-Generation"),
            reply.content,
            step_ns=prepared.step_ns,
            default_length=prepared.default_length,
        )
        if not verdict.ok:
            data = req.body.get("data")
            times = data.get("time", []) if isinstance(data, dict) else []
            first = f" from {times[0]!r}" if times else ""
            problems.append(f"{req.mode} payload ({len(times)} rows{first}): {verdict.error}")
    for case in prepared.cases:
        reply = _post(session, url, case.body, case.content_type)
        ctype = reply.headers.get("Content-Type")
        if error := check_problem(case, reply.status_code, ctype, reply.content):
            problems.append(f"bad case {error}")
    sent = len(probes) + len(prepared.cases) + (1 if config.weight("ingest") else 0)
    if config.weight("ingest") and (error := _check_ingest(session, url, config)):
        problems.append(error)
    if problems:
        more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
        shown = "; ".join(problems[:_SHOWN])
        raise PreflightError(
            f"{url} refused {len(problems)} of {sent} preflight requests: {shown}{more}"
        )
    log.info("preflight passed: %d requests answered as expected", sent)


def _check_ingest(session: requests.Session, url: str, config: LoadConfig) -> str | None:
    reply = session.get(f"{url}/cache", timeout=TIMEOUT_S)
    if reply.status_code != 200:
        return f"GET /cache -> {describe_failure(reply.status_code, reply.content)}"
    source, topic = reply.json().get("source"), reply.json().get("topic")
    if source != "kafka":
        return (
            "the ingest user measures Kafka -> /cache, but the service's window comes from "
            f"{source!r}, not Kafka"
        )
    if topic != config.kafka_topic:
        return f"KAFKA_TOPIC={config.kafka_topic!r} but the service reads {topic!r}"
    return None
