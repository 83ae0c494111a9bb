"""Response checks, SLO gates, load shapes and configuration (pure logic, no server)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from locustfiles import (
    SHAPES,
    BadCase,
    ConfigError,
    CpuMeter,
    CpuUsage,
    ForecastRequest,
    GateSpec,
    LoadConfig,
    RunSummary,
    check_forecast,
    check_problem,
    evaluate,
    series_request,
    target,
)
from locustfiles._payloads import EncodedRequest, quantile_request
from locustfiles._verdicts import cache_contains

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
STEP = 1800 * NS
LAST = 946_684_800 * NS  # 2000-01-01T00:00:00Z
SERIES = ForecastRequest({}, 3, LAST, STEP, "synthetic")


def answer(times: list[str], **overrides: object) -> bytes:
    body: dict[str, object] = {
        "generation": 7,
        "model_version": "m1",
        "data_age_ms": 12,
        "predictions": [{"time": t, "value": 1.5} for t in times],
    }
    body.update(overrides)
    return json.dumps(body).encode()


GOOD = ["2000-01-01T00:30:00Z", "2000-01-01T01:00:00Z", "2000-01-01T01:30:00Z"]


def test_a_correct_forecast_passes_and_reports_generation_and_age():
    verdict = check_forecast(SERIES, 200, "7", answer(GOOD))
    assert verdict.ok and verdict.generation == 7 and verdict.data_age_ms == 12


@pytest.mark.parametrize(
    ("status", "header", "body", "words"),
    [
        (500, None, b'{"detail": "boom"}', "HTTP 500: boom"),
        (422, None, b'{"detail": "data.time: bad"}', "HTTP 422: data.time: bad"),
        (200, "7", b"<html>", "not JSON"),
        (200, "7", answer(GOOD, generation=None), "generation missing"),
        (200, "7", answer(GOOD, generation=True), "generation missing"),
        (200, "8", answer(GOOD), "X-Cache-Generation '8' differs"),
        (200, None, answer(GOOD), "X-Cache-Generation None differs"),
        (200, "7", answer(GOOD, data_age_ms=-1), "data_age_ms"),
        (200, "7", answer(GOOD, model_version=""), "model_version"),
        (200, "7", answer(GOOD[:2]), "2 predictions for inference_length 3"),
        (200, "7", answer([GOOD[0]] * 3), "expected 1800 s"),
        (200, "7", answer([*GOOD[1:], "2000-01-01T02:00:00Z"]), "3600 s after the last input"),
        (200, "7", answer(["2000-01-01T00:30:00Z", "x", "y"]), "not an ISO-8601 time"),
        (200, "7", answer(GOOD, predictions=[{"time": GOOD[0], "value": "NaN"}] * 3), "finite"),
    ],
)
def test_wrong_forecasts_fail_with_the_reason(status, header, body, words):
    verdict = check_forecast(SERIES, status, header, body)
    assert not verdict.ok and words in verdict.error


def test_cached_forecasts_are_checked_against_the_default_length_and_model_step():
    cached = ForecastRequest({}, None, None, None, "cached")
    assert check_forecast(cached, 200, "7", answer(GOOD), step_ns=STEP, default_length=3).ok
    short = check_forecast(cached, 200, "7", answer(GOOD), step_ns=STEP, default_length=1)
    assert "3 predictions for inference_length 1" in short.error
    hourly = check_forecast(cached, 200, "7", answer(GOOD), step_ns=2 * STEP)
    assert "expected 3600 s" in hourly.error


def test_a_forecast_of_a_named_series_must_name_it():
    keyed = series_request("meter:7", 3)
    right = answer(GOOD, series_id="meter:7")
    assert check_forecast(keyed, 200, "7", right, step_ns=STEP).ok
    for wrong in (answer(GOOD, series_id="meter:8"), answer(GOOD)):
        verdict = check_forecast(keyed, 200, "7", wrong, step_ns=STEP)
        assert not verdict.ok and "answered for 'meter:7'" in verdict.error


CASE = BadCase("duplicate_timestamp", b"{}", "application/json", 422, "duplicate_timestamps")


def problem(status: int, code: str = "duplicate_timestamps", **extra: object) -> bytes:
    body: dict[str, object] = {
        "type": "/problems/validation-error",
        "title": "Request body failed validation",
        "status": status,
        "detail": "data.time[3]: duplicate",
        "errors": [{"field": "data.time[3]", "code": code, "detail": "..."}],
    }
    body.update(extra)
    return json.dumps(body).encode()


def test_a_documented_problem_passes():
    assert check_problem(CASE, 422, "application/problem+json", problem(422)) is None


@pytest.mark.parametrize(
    ("status", "ctype", "body", "words"),
    [
        (500, "application/problem+json", problem(500), "expected 422, got HTTP 500"),
        (200, "application/json", b"{}", "expected 422, got HTTP 200"),
        (0, None, None, "connection failed"),
        (400, "application/problem+json", problem(400), "expected 422, got HTTP 400"),
        (422, "text/html", b"<p>no</p>", "not application/problem+json"),
        (422, "application/problem+json", problem(422, code="other"), "expected field error"),
        (422, "application/problem+json", problem(422, detail=""), "lacks a detail"),
        (422, "application/problem+json", problem(400), "problem status 400 differs"),
    ],
)
def test_anything_else_fails_a_bad_case(status, ctype, body, words):
    error = check_problem(CASE, status, ctype, body)
    assert error is not None and words in error and error.startswith(CASE.name)


def test_cache_contains_needs_both_the_offset_consumed_and_the_time_reached():
    cache = {"offsets": {"0": 11}, "time_max": "2000-01-01T00:30:00Z"}
    assert cache_contains(cache, 0, 10, LAST + STEP)
    assert not cache_contains(cache, 0, 11, LAST)  # offset 11 is the next one to read
    assert not cache_contains(cache, 0, 10, LAST + 2 * STEP)
    assert not cache_contains(cache, 1, 0, LAST)
    assert not cache_contains({"offsets": {}}, 0, 0, LAST)


# -- gates ----------------------------------------------------------------------------------


def summary(**overrides: object) -> RunSummary:
    values: dict[str, object] = {
        "requests": 1000,
        "failures": 0,
        "http_requests": 1000,
        "rps": 250.0,
        "avg_ms": 8.0,
        "p50_ms": 6.0,
        "p95_ms": 20.0,
        "p99_ms": 40.0,
        "max_data_age_ms": 90,
        "freshness_samples": 0,
        "freshness_max_ms": None,
    }
    values.update(overrides)
    return RunSummary(**values)  # type: ignore[arg-type]


def test_default_gates_fail_on_any_failure_and_on_an_empty_run():
    spec = GateSpec.from_env({})
    assert [g.variable for g in spec.gates] == ["LOCUST_MAX_FAIL_RATIO", "LOCUST_MIN_REQUESTS"]
    assert all(r.passed for r in evaluate(spec, summary()))
    ratio, _ = evaluate(spec, summary(failures=3))
    assert not ratio.passed
    assert ratio.line() == (
        "SLO gate FAILED: failure ratio 0.0030 > 0 (LOCUST_MAX_FAIL_RATIO) by 0.0030; "
        "3 of 1000 requests failed"
    )
    _, count = evaluate(spec, summary(requests=0, http_requests=0))
    assert not count.passed and "HTTP requests 0 < 1" in count.line()


def test_a_failed_latency_gate_says_which_and_by_how_much():
    spec = GateSpec.from_env({"LOCUST_P99_MS": "25", "LOCUST_P95_MS": "30"})
    results = {r.gate.variable: r for r in evaluate(spec, summary())}
    assert results["LOCUST_P95_MS"].passed
    assert results["LOCUST_P99_MS"].line() == (
        "SLO gate FAILED: p99 latency 40 ms > 25 ms (LOCUST_P99_MS) by 15 ms (+60%)"
    )


def test_a_min_gate_fails_below_and_an_unmeasured_gate_fails():
    spec = GateSpec.from_env({"LOCUST_MIN_RPS": "500", "LOCUST_MAX_FRESHNESS_MS": "1000"})
    results = {r.gate.variable: r for r in evaluate(spec, summary())}
    assert "throughput 250 req/s < 500 req/s (LOCUST_MIN_RPS) by 250 req/s (-50%)" in (
        results["LOCUST_MIN_RPS"].line()
    )
    fresh = results["LOCUST_MAX_FRESHNESS_MS"]
    assert not fresh.passed and "not measured" in fresh.line() and "ingest" in fresh.line()


def test_the_generators_cpu_is_a_share_of_every_core_over_the_run():
    usage = CpuUsage(cpu_s=6.0, wall_s=10.0, cores=2)
    assert usage.share == 0.3
    assert usage.plus_cpu(4.0).share == 0.5  # a worker process's seconds added
    assert usage.line() == "Locust CPU 6.0 s over 10.0 s = 30% of 2 cores"
    assert CpuUsage(1.0, 0.0, 2).share == 0.0
    with_cpu = summary(locust_cpu=usage)
    assert with_cpu.line() == summary().line() + "; Locust CPU 6.0 s over 10.0 s = 30% of 2 cores"
    figures = with_cpu.as_dict()
    assert figures["locust_cpu_share"] == 0.3 and figures["cores"] == 2
    assert figures["locust_cpu_ms_per_request"] == 6.0  # 6 s over 1,000 requests
    assert json.loads(json.dumps(figures))["p99_ms"] == 40.0
    assert "locust_cpu_share" not in summary().as_dict()


def test_the_cpu_meter_counts_this_process_only_from_its_start():
    meter = CpuMeter()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    busy = meter.read()
    assert 0.15 <= busy.cpu_s <= busy.wall_s + 0.05 and busy.cores >= 1
    meter.start()
    time.sleep(0.2)
    idle = meter.read()
    assert idle.wall_s >= 0.2 and idle.cpu_s < 0.05


@given(
    limit=st.floats(0, 1e6, allow_nan=False),
    value=st.floats(0, 1e6, allow_nan=False),
    variable=st.sampled_from(["LOCUST_P50_MS", "LOCUST_P95_MS", "LOCUST_P99_MS", "LOCUST_AVG_MS"]),
)
def test_a_max_gate_passes_exactly_when_the_value_is_within_the_limit(limit, value, variable):
    field = {"LOCUST_P50_MS": "p50_ms", "LOCUST_P95_MS": "p95_ms", "LOCUST_P99_MS": "p99_ms"}
    spec = GateSpec.from_env({variable: repr(limit)})
    results = evaluate(spec, summary(**{field.get(variable, "avg_ms"): value}))
    (gate,) = [r for r in results if r.gate.variable == variable]
    assert gate.passed == (value <= limit)
    assert (variable in gate.line()) and (("by " in gate.line()) != gate.passed)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LOCUST_P99_MS": "fast"}, "LOCUST_P99_MS must be a number"),
        ({"LOCUST_P95_MS": "-1"}, "LOCUST_P95_MS must be a finite number >= 0"),
        ({"LOCUST_MAX_FAIL_RATIO": "5"}, "LOCUST_MAX_FAIL_RATIO is a ratio"),
    ],
)
def test_bad_gate_values_name_the_variable(env, words):
    with pytest.raises(ConfigError, match=words):
        GateSpec.from_env(env)


# -- shapes -----------------------------------------------------------------------------------


@given(
    shape=st.sampled_from(SHAPES),
    users=st.integers(1, 500),
    rate=st.floats(0.1, 100),
    run_time=st.integers(1, 3600),
    fraction=st.floats(0, 1.5),
)
def test_shapes_stay_within_the_users_and_stop_at_the_run_time(
    shape, users, rate, run_time, fraction
):
    tick = target(shape, fraction * run_time, users, rate, run_time)
    if fraction >= 1:
        assert tick is None
        return
    assert tick is not None
    count, spawn = tick
    assert 1 <= count <= users and spawn >= rate


def test_ramp_climbs_in_stages_and_spike_peaks_in_the_middle():
    ramp = [target("ramp", t, 20, 5.0, 100)[0] for t in (0, 25, 45, 65, 85, 99)]
    assert ramp == [4, 8, 12, 16, 20, 20]
    spike = [target("spike", t, 20, 5.0, 100)[0] for t in (0, 39, 40, 59, 60, 99)]
    assert spike == [5, 5, 20, 20, 5, 5]
    assert target("steady", 1e9, 20, 5.0, None) == (20, 5.0)


# -- configuration ------------------------------------------------------------------------------


class Options:
    def __init__(self, **values: object) -> None:
        self.__dict__.update(values)


def test_options_win_over_the_environment():
    env = {"LOCUST_WEIGHT_CACHED": "7", "LOCUST_SHAPE": "spike"}
    assert LoadConfig.from_env(env).weight("cached") == 7
    config = LoadConfig.from_env(env, Options(weight_cached=1, weight_bad=0, shape="ramp"))
    assert config.weight("cached") == 1 and config.weight("bad") == 0
    assert config.shape == "ramp" and config.weight("synthetic") == 2


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"LOCUST_WEIGHT_REAL": "x"}, "LOCUST_WEIGHT_REAL must be an integer"),
        ({"LOCUST_SHAPE": "wave"}, "LOCUST_SHAPE (--shape) must be one of steady, ramp, spike"),
        ({"LOCUST_TIMEZONES": "Z,Mars/Olympus"}, "LOCUST_TIMEZONES: 'Mars/Olympus'"),
        ({"LOCUST_ROWS_MIN": "500", "LOCUST_ROWS_MAX": "400"}, "LOCUST_ROWS_MIN (500) exceeds"),
        ({"LOCUST_ROWS_MAX": "20000"}, "LOCUST_ROWS_MAX (20000) exceeds MAX_ROWS"),
        ({"LOCUST_WEIGHT_INGEST": "1"}, "KAFKA_BOOTSTRAP_SERVERS must be set"),
        (
            {
                f"LOCUST_WEIGHT_{m}": "0"
                for m in ("CACHED", "SYNTHETIC", "REAL", "BAD", "QUANTILES")
            },
            "nothing to run",
        ),
        ({"S3_ENDPOINT": "127.0.0.1:9000", "LOCUST_SERIES_KEY": "k"}, "LOCUST_SERIES_BUCKET"),
        ({"S3_ENDPOINT": "http://h:1", "SNAPSHOT_BUCKET": "b", "SNAPSHOT_KEY": "k"}, "host:port"),
    ],
)
def test_bad_configuration_names_the_variable(env, words):
    with pytest.raises(ConfigError) as info:
        LoadConfig.from_env(env)
    assert words in str(info.value)


def test_s3_is_used_only_with_an_endpoint_and_an_object():
    assert LoadConfig.from_env({"S3_ENDPOINT": "127.0.0.1:9000"}).s3 is None
    s3 = LoadConfig.from_env(
        {"S3_ENDPOINT": "127.0.0.1:9000", "SNAPSHOT_BUCKET": "b", "SNAPSHOT_KEY": "k"}
    ).s3
    assert s3 is not None and (s3.bucket, s3.key, s3.secure) == ("b", "k", False)


def test_importing_the_package_does_not_import_locust_or_gevent():
    code = (
        "import sys, locustfiles; "
        "print(sorted(m for m in ('locust', 'gevent', 'kafka', 'minio') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def _with_bounds(bounds: list[dict[str, float]]) -> bytes:
    points = [{"time": t, "value": 1.5, "quantiles": b} for t, b in zip(GOOD, bounds, strict=True)]
    return answer(GOOD, predictions=points)


@pytest.mark.parametrize(
    ("bounds", "words"),
    [
        ([{"0.1": 1.0, "0.9": 2.0}] * 3, None),
        ([{"0.1": 1.0}] * 3, "has keys ['0.1'], not ['0.1', '0.9']"),
        ([{"0.1": 1.0, "0.90": 2.0}] * 3, "not ['0.1', '0.9']"),
        ([{"0.1": 2.0, "0.9": 1.0}] * 3, "decrease with the level"),
        ([{"0.1": 1.0, "0.9": None}] * 3, "not a finite number"),
    ],
)
def test_quantile_answers_need_every_level_keyed_in_decimal_and_in_order(bounds, words):
    req, raw = EncodedRequest.of(quantile_request((0.9, 0.1))).with_length(3)
    assert json.loads(raw) == {"quantiles": [0.9, 0.1], "inference_length": 3}
    verdict = check_forecast(req, 200, "7", _with_bounds(bounds), step_ns=STEP)
    assert verdict.ok if words is None else words in verdict.error
