"""Locust entry point: ``locust -f locustfiles --host http://127.0.0.1:8000`` (imported only
inside Locust: gevent and kafka). The users, one per mode, each answer checked and its stats
row named by mode; the load shape; and the hooks: configuration (a bad value: exit code 2),
the data age and CPU time of worker processes, and the SLO gates at quitting (exit code 0 all
passed, 1 a gate failed, 2 the preflight stopped the run; ``--summary-json PATH`` also writes
them as JSON).

Bodies are encoded before the load, not per request: each synthetic or real user builds
``LOCUST_PAYLOADS_PER_USER`` series at its start and re-sends them with a new
``inference_length`` (:class:`EncodedRequest`), the cached bodies, the bodies naming each
series of the window and the invalid cases are encoded once per process. Answers are still
checked against what was sent.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import sys
import time
from typing import Any, ClassVar

import gevent
import gevent.lock
import requests
from kafka import KafkaProducer
from kafka.errors import KafkaError
from locust import FastHttpUser, LoadTestShape, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry

from locustfiles._config import MODES, SHAPES, LoadConfig, target
from locustfiles._cpu import CpuMeter, CpuUsage
from locustfiles._errors import ConfigError, LoadTestError
from locustfiles._payloads import (
    JSON,
    QUANTILE_SETS,
    EncodedRequest,
    ForecastRequest,
    cached_request,
    ingest_event,
    parse_time_ns,
    quantile_request,
    real_request,
    seasonal_values,
    synthetic_request,
)
from locustfiles._preflight import TIMEOUT_S, Prepared, preflight
from locustfiles._verdicts import (
    GateResult,
    GateSpec,
    RunSummary,
    cache_contains,
    check_forecast,
    check_problem,
    evaluate,
)

log = logging.getLogger(__name__)
INGEST_TYPE = "INGEST"
_AGE_KEY = "locustfiles_data_age"
_CPU_KEY = "locustfiles_cpu_s"
_HEADERS = {"Content-Type": JSON}
# `{}` and `{"inference_length": k}`, encoded once.
_CACHED = EncodedRequest.of(cached_request(None))
# `{"quantiles": [...]}` of each level set, encoded once.
_QUANTILES = tuple(EncodedRequest.of(quantile_request(levels)) for levels in QUANTILE_SETS)


class Runtime:
    """Per process: the configuration and gates (set by the hooks), what the first user
    prepares for all (:func:`preflight`; the others wait on the lock), the largest
    ``data_age_ms`` of a right forecast, the Kafka producer, and this process's CPU since the
    test started (with, on a master, its workers' last reported CPU seconds)."""

    def __init__(self) -> None:
        self.config, self.gates = LoadConfig(), GateSpec(())
        self.prepared = Prepared(0, 0, None, ())
        self.failure: str | None = None
        self.max_age_ms: int | None = None
        self.ready = self.stopping = False
        self.users = self.last_event_ns = 0
        self.lock = gevent.lock.Semaphore()
        self.producer: KafkaProducer | None = None
        self.cpu = CpuMeter()
        self.usage: CpuUsage | None = None  # read when the test stopped
        self.worker_cpu_s: dict[str, float] = {}

    def cpu_usage(self) -> CpuUsage:
        """This run's generator CPU: this process's and its workers'."""
        usage = self.usage or self.cpu.read()
        return usage.plus_cpu(sum(self.worker_cpu_s.values()))

    def prepare(self, host: str | None) -> bool:
        """True when the preflight (run once) passed, else :attr:`failure` says why."""
        with self.lock:
            if not self.ready:
                self.ready = True
                try:
                    self.prepared = preflight(host, self.config)
                except (LoadTestError, OSError, http.client.HTTPException, ValueError) as exc:
                    self.failure = f"{type(exc).__name__}: {exc}"
                    log.error("preflight failed: %s", self.failure)
            return self.failure is None

    def record_age(self, age_ms: object) -> None:
        if isinstance(age_ms, int):
            self.max_age_ms = max(age_ms, self.max_age_ms or 0)


RUNTIME = Runtime()


class ServiceUser(FastHttpUser):
    """Common behaviour: the preflight once per process, think time, checked forecasts."""

    abstract = True
    mode: ClassVar[str] = ""
    network_timeout = 10.0
    connection_timeout = 5.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        RUNTIME.users += 1  # reproducible from LOCUST_SEED when it is set
        seed = RUNTIME.config.seed
        self.rng = random.Random(None if seed is None else seed * 1_000_003 + RUNTIME.users)

    def wait_time(self) -> float:
        return self.rng.uniform(RUNTIME.config.wait_min_ms, RUNTIME.config.wait_max_ms) / 1000

    def on_start(self) -> None:
        if RUNTIME.prepare(self.host):
            return
        runner = self.environment.runner
        if runner is not None and not RUNTIME.stopping:
            RUNTIME.stopping = True
            # Headless: end the process (exit code 2 at quitting); web UI: stop this test.
            # From another greenlet, since quitting kills every user, this one included.
            headless = getattr(self.environment.parsed_options, "headless", True)
            gevent.spawn(runner.quit if headless else runner.stop)
        raise StopUser

    def _length(self) -> int:
        return self.rng.randint(1, RUNTIME.config.max_inference_length)

    def _post(self, body: bytes, content_type: str, name: str) -> Any:
        post: Any = self.client.post  # annotated for str data; bytes are sent as they are
        headers = _HEADERS if content_type == JSON else {"Content-Type": content_type}
        return post("/predict", data=body, headers=headers, name=name, catch_response=True)

    def forecast(self, req: ForecastRequest, body: bytes, name: str) -> None:
        """POST ``body`` (``req`` encoded) and check the answer against ``req``; record its
        data age when it is right."""
        with self._post(body, JSON, name) as response:
            if response.status_code == 0:
                response.failure(f"no HTTP response: {response.error!r}")
                return
            generation = (response.headers or {}).get("X-Cache-Generation")
            step, length = RUNTIME.prepared.step_ns, RUNTIME.prepared.default_length
            verdict = check_forecast(
                req,
                response.status_code,
                generation,
                response.content,
                step_ns=step,
                default_length=length,
            )
            if verdict.ok:
                response.success()
                RUNTIME.record_age(verdict.data_age_ms)
            else:
                response.failure(verdict.error)


class CachedUser(ServiceUser):
    """Forecasts from the service's window: ``{}`` and ``{"inference_length": k}``."""

    mode = "cached"

    @task
    def default_length(self) -> None:
        self.forecast(*_CACHED.with_length(None), "/predict cached {}")

    @task
    def with_length(self) -> None:
        self.forecast(*_CACHED.with_length(self._length()), "/predict cached k")


class QuantilesUser(ServiceUser):
    """Forecasts from the service's window with interval bounds:
    ``{"quantiles": [...], "inference_length": k}``."""

    mode = "quantiles"

    @task
    def quantiles(self) -> None:
        encoded = self.rng.choice(_QUANTILES)
        self.forecast(*encoded.with_length(self._length()), "/predict quantiles")


class SeriesUser(ServiceUser):
    """Sends series of its own: ``LOCUST_PAYLOADS_PER_USER`` of them, built and encoded at
    its start by :meth:`build`, each request one of them with a new ``inference_length``."""

    abstract = True
    payloads: tuple[EncodedRequest, ...] = ()

    def on_start(self) -> None:
        super().on_start()
        count = RUNTIME.config.payloads_per_user
        self.payloads = tuple(EncodedRequest.of(self.build()) for _ in range(count))

    def build(self) -> ForecastRequest:
        raise NotImplementedError

    def send(self, name: str) -> None:
        self.forecast(*self.rng.choice(self.payloads).with_length(self._length()), name)


class SyntheticUser(SeriesUser):
    """Generated series: the model's step, a random zone, ``LOCUST_ROWS_MIN..MAX`` rows."""

    mode = "synthetic"

    def build(self) -> ForecastRequest:
        config = RUNTIME.config
        return synthetic_request(
            self.rng,
            rows=self.rng.randint(config.rows_min, config.rows_max),
            step_ns=RUNTIME.prepared.step_ns,
            zone=self.rng.choice(config.zones),
            column=config.column,
            inference_length=1,
        )

    @task
    def synthetic(self) -> None:
        self.send("/predict synthetic")


class RealUser(SeriesUser):
    """Contiguous windows of the real series (S3 object or local file)."""

    mode = "real"

    def build(self) -> ForecastRequest:
        series, config = RUNTIME.prepared.series, RUNTIME.config
        assert series is not None
        rows = self.rng.randint(config.rows_min, min(config.rows_max, series.longest_run))
        return real_request(series, self.rng, rows=rows, inference_length=1)

    @task
    def real(self) -> None:
        self.send("/predict real")


class KeyedUser(ServiceUser):
    """Forecasts of random series of the window: ``{"series_id": id}`` with a random
    ``inference_length``, the ids read from ``GET /series`` by the preflight (at most
    ``LOCUST_SERIES_MAX``) and each body encoded once per process."""

    mode = "series"

    @task
    def one_series(self) -> None:
        encoded = self.rng.choice(RUNTIME.prepared.keyed)
        self.forecast(*encoded.with_length(self._length()), "/predict series")


class BadInputUser(ServiceUser):
    """Each invalid case; a success only when the server answers the documented 4xx."""

    mode = "bad"

    @task
    def invalid(self) -> None:
        case = self.rng.choice(RUNTIME.prepared.cases)
        with self._post(case.body, case.content_type, f"/predict bad:{case.name}") as response:
            status, ctype = response.status_code, (response.headers or {}).get("Content-Type")
            error = check_problem(case, status, ctype, response.content)
            if error is None:
                response.success()
            else:
                lost = f"{case.name}: no HTTP response: {response.error!r}"
                response.failure(error if status else lost)


class IngestUser(ServiceUser):
    """Freshness under load, Kafka -> daemon -> shm -> ``/cache``: each task produces one
    event just after the window's newest time, then polls ``GET /cache`` (outside the
    statistics) until a generation has consumed its offset and reaches its time. The time
    from the send to that answer is request type ``INGEST``, name ``kafka -> /cache``; a
    timeout is a failure."""

    mode = "ingest"
    watch: requests.Session | None = None

    def on_start(self) -> None:
        super().on_start()
        self.watch = requests.Session()

    def on_stop(self) -> None:
        if self.watch is not None:
            self.watch.close()

    def _cache(self) -> object:
        assert self.watch is not None
        reply = self.watch.get(f"{str(self.host).rstrip('/')}/cache", timeout=TIMEOUT_S)
        return reply.json() if reply.status_code == 200 else None

    @task
    def produce_and_watch(self) -> None:
        config = RUNTIME.config
        timeout_s = config.ingest_timeout_ms / 1000.0
        started = time.perf_counter()
        error: Exception | None = None
        try:
            cache = self._cache()
            newest = parse_time_ns(cache.get("time_max")) if isinstance(cache, dict) else None
            # One step after both the window's newest time and this process's last event.
            when = max(RUNTIME.last_event_ns, newest or 0) + RUNTIME.prepared.step_ns
            RUNTIME.last_event_ns = when
            event = ingest_event(when, seasonal_values([when], self.rng)[0], config.column)
            started = time.perf_counter()
            sent = _producer(config).send(config.kafka_topic, value=event).get(timeout=timeout_s)
            while not cache_contains(self._cache(), sent.partition, sent.offset, when):
                if time.perf_counter() - started > timeout_s:
                    lag = f"{sent.partition}:{sent.offset}"
                    raise TimeoutError(f"event {lag} not in /cache after {timeout_s:g} s")
                gevent.sleep(config.ingest_poll_ms / 1000.0)
        except (KafkaError, OSError, http.client.HTTPException, ValueError) as exc:
            error = exc
        self.environment.events.request.fire(
            request_type=INGEST_TYPE,
            name="kafka -> /cache",
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=0,
            exception=error,
            context={},
        )


def _producer(config: LoadConfig) -> KafkaProducer:
    """One producer per process, made by the first ingest task (never before a fork)."""
    if RUNTIME.producer is None:
        RUNTIME.producer = KafkaProducer(
            bootstrap_servers=list(config.kafka_servers),
            acks=1,
            linger_ms=0,
            request_timeout_ms=config.ingest_timeout_ms,
            max_block_ms=config.ingest_timeout_ms,
        )
    return RUNTIME.producer


USERS = (CachedUser, SyntheticUser, RealUser, BadInputUser, IngestUser, KeyedUser, QuantilesUser)


class LoadShape(LoadTestShape):
    """The ``--shape`` profile (:func:`locustfiles._config.target`) over ``-u``/``-r``/``-t``."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        users = int(getattr(options, "num_users", None) or 1)
        rate = float(getattr(options, "spawn_rate", None) or 1.0)
        run_time = getattr(options, "run_time", None) or None
        elapsed = time.perf_counter() - float(self.start_time)
        return target(RUNTIME.config.shape, elapsed, users, rate, run_time)


def summarize(
    stats: RequestStats, max_age_ms: int | None, cpu: CpuUsage | None = None
) -> RunSummary:
    """The run's figures: latency over every request type but ``INGEST``, failures over all;
    ``cpu``: the generator's own."""
    http = StatsEntry(stats, "HTTP", "")
    fresh: StatsEntry | None = None
    for entry in stats.entries.values():
        if entry.method == INGEST_TYPE:
            fresh = entry
        else:
            http.extend(entry)

    def pct(q: float) -> float:
        return float(http.get_response_time_percentile(q)) if http.num_requests else 0.0

    return RunSummary(
        requests=stats.total.num_requests,
        failures=stats.total.num_failures,
        http_requests=http.num_requests,
        rps=float(http.total_rps),
        avg_ms=float(http.avg_response_time),
        p50_ms=pct(0.50),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
        max_data_age_ms=max_age_ms,
        freshness_samples=fresh.num_requests - fresh.num_failures if fresh else 0,
        freshness_max_ms=float(fresh.max_response_time) if fresh and fresh.num_requests else None,
        locust_cpu=cpu,
    )


def _add_options(parser: Any, **_: Any) -> None:
    for mode in MODES:
        help_text = f"weight of the {mode} user (env LOCUST_WEIGHT_{mode.upper()}; 0 = off)"
        parser.add_argument(f"--weight-{mode}", type=int, metavar="N", help=help_text)
    help_text = "load shape over -u/-r/-t (env LOCUST_SHAPE; default steady)"
    parser.add_argument("--shape", choices=SHAPES, help=help_text)
    help_text = "also write the run summary and the SLO gates' verdicts to PATH as JSON"
    parser.add_argument("--summary-json", metavar="PATH", help=help_text)


def _configure(environment: Environment, *, at_start: bool = False) -> None:
    options = environment.parsed_options
    named = set(getattr(options, "user_classes", None) or ())  # user classes that run alone
    try:
        only = {user.mode for user in USERS if user.__name__ in named}
        config = LoadConfig.from_env(os.environ, options, only)
        gates = GateSpec.from_env(os.environ)
        if config.shape != "steady" and not getattr(options, "run_time", None):
            raise ConfigError(f"the {config.shape} shape needs a run time (-t / --run-time)")
    except ConfigError as exc:
        if at_start:
            log.error("options ignored, the previous configuration stays: %s", exc)
            return
        log.error("configuration error: %s", exc)
        sys.exit(2)
    if at_start and config == RUNTIME.config:
        return
    if config != RUNTIME.config:  # the kinds of requests may change: run the preflight again
        RUNTIME.ready, RUNTIME.failure, RUNTIME.stopping = False, None, False
    RUNTIME.config, RUNTIME.gates = config, gates
    # kafka-python logs every connection at INFO; the run's own lines matter more here.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    for user in USERS:
        user.weight = config.weight(user.mode)
    modes = " ".join(f"{m}={w}" for m, w in config.weights)
    limits = ", ".join(f"{g.variable}={g.limit:g}" for g in gates.gates)
    log.info("modes %s, shape %s, seed %s, gates %s", modes, config.shape, config.seed, limits)


def _write_summary(
    environment: Environment, summary: RunSummary | None, results: list[GateResult]
) -> None:
    """``--summary-json``: the exit code, the preflight's failure, the figures and gates."""
    path = getattr(environment.parsed_options, "summary_json", None)
    if not path:
        return
    gates = [
        {"variable": r.gate.variable, "limit": r.gate.limit, "value": r.value, "passed": r.passed}
        for r in results
    ]
    document = {
        "exit_code": environment.process_exit_code,
        "preflight_failure": RUNTIME.failure,
        "summary": None if summary is None else summary.as_dict(),
        "gates": gates,
    }
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2)


def _judge(environment: Environment) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):
        return
    if RUNTIME.failure is not None:
        log.error("no load was applied: the preflight failed: %s", RUNTIME.failure)
        environment.process_exit_code = 2
        _write_summary(environment, None, [])
        return
    summary = summarize(runner.stats, RUNTIME.max_age_ms, RUNTIME.cpu_usage())
    log.info("run summary: %s", summary.line())
    results = evaluate(RUNTIME.gates, summary)
    for result in results:
        (log.info if result.passed else log.error)(result.line())
    if failed := sum(not r.passed for r in results):
        log.error("SLO gates: %d of %d failed", failed, len(results))
    else:
        log.info("SLO gates: all %d passed", len(results))
    environment.process_exit_code = 1 if failed else 0
    _write_summary(environment, summary, results)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if RUNTIME.producer is not None:
        RUNTIME.producer.close(timeout=5)
    _judge(environment)


def _on_test_start(environment: Environment, **_: Any) -> None:
    _configure(environment, at_start=True)
    RUNTIME.max_age_ms = None
    RUNTIME.cpu.start()
    RUNTIME.usage, RUNTIME.worker_cpu_s = None, {}


def _on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    # Worker processes send their largest data age with each report, the master keeps the max;
    # and their CPU seconds since the test started, the master keeps the last of each.
    data[_AGE_KEY], RUNTIME.max_age_ms = RUNTIME.max_age_ms, None
    data[_CPU_KEY] = RUNTIME.cpu.cpu_s()


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    RUNTIME.record_age(data.get(_AGE_KEY))
    if isinstance(cpu_s := data.get(_CPU_KEY), float | int):
        RUNTIME.worker_cpu_s[client_id] = float(cpu_s)


_HOOKS: dict[str, Any] = {
    "init_command_line_parser": _add_options,
    "init": lambda environment, **_: _configure(environment),
    "test_start": _on_test_start,
    "test_stop": lambda **_: setattr(RUNTIME, "usage", RUNTIME.cpu.read()),
    "quitting": _on_quitting,
    "report_to_master": _on_report,
    "worker_report": _on_worker_report,
    "reset_stats": lambda **_: setattr(RUNTIME, "max_age_ms", None),
}
for _hook, _handler in _HOOKS.items():
    getattr(events, _hook).add_listener(_handler)
