"""The Locust users, one per mode (imported only inside Locust).

FastHttpUser: the generator must not be the bottleneck on a small machine, and these users
need nothing from ``requests``. Each request is checked by :mod:`locustfiles._checks` and
marked failed with the reason when the answer is wrong, whatever its status code. Stats rows
are named by mode (``/predict synthetic``, ``/predict bad:<case>``) so a failure points at
the kind of request that caused it.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, task
from locust.exception import StopUser

from locustfiles._checks import check_forecast, check_problem
from locustfiles._runtime import RUNTIME
from locustfiles._series import ForecastRequest, cached_request, real_request, synthetic_request

__all__ = ["BadInputUser", "CachedUser", "RealUser", "ServiceUser", "SyntheticUser"]

log = logging.getLogger(__name__)
_JSON_HEADERS = {"Content-Type": "application/json"}


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get(name) or headers.get(name.lower())
    return str(value) if value is not None else None


def _content(response: Any) -> bytes | None:
    if getattr(response, "error", None) is not None and not response.status_code:
        return None
    content = response.content
    return content if isinstance(content, bytes) else None


class ServiceUser(FastHttpUser):
    """Common behaviour: preflight once per process, think time, checked forecasts."""

    abstract = True
    mode: ClassVar[str] = ""
    network_timeout = 10.0
    connection_timeout = 5.0

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self.rng = RUNTIME.next_rng()

    def wait_time(self) -> float:
        config = RUNTIME.config
        return self.rng.uniform(config.wait_min_ms, config.wait_max_ms) / 1000.0

    def on_start(self) -> None:
        if RUNTIME.prepare(self.host):
            return
        runner = self.environment.runner
        if runner is not None and not RUNTIME.stopping:
            RUNTIME.stopping = True
            options = self.environment.parsed_options
            # Headless: end the process (exit code 2 at quitting). Web UI: stop this test.
            # From another greenlet, since quitting kills every user, this one included.
            gevent.spawn(runner.quit if getattr(options, "headless", True) else runner.stop)
        raise StopUser

    def _length(self) -> int:
        return self.rng.randint(1, RUNTIME.config.max_inference_length)

    def forecast(self, req: ForecastRequest, name: str) -> None:
        """POST ``req`` and check the answer; record its data age when it is right."""
        facts = RUNTIME.facts
        with self.client.post(
            "/predict",
            data=req.encode(),  # type: ignore[arg-type]  # bytes are sent as they are
            headers=_JSON_HEADERS,
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code == 0:
                response.failure(f"no HTTP response: {response.error!r}")
                return
            verdict = check_forecast(
                req,
                response.status_code,
                _header(response, "X-Cache-Generation"),
                _content(response),
                step_ns=facts.step_ns,
                default_length=facts.default_length,
            )
            if verdict.ok:
                response.success()
                if verdict.data_age_ms is not None:
                    RUNTIME.ages.record(verdict.data_age_ms)
            else:
                response.failure(verdict.error)


class CachedUser(ServiceUser):
    """Forecasts from the service's cached window: ``{}`` and ``{"inference_length": k}``."""

    mode = "cached"

    @task
    def default_length(self) -> None:
        self.forecast(cached_request(None), "/predict cached {}")

    @task
    def with_length(self) -> None:
        self.forecast(cached_request(self._length()), "/predict cached k")


class SyntheticUser(ServiceUser):
    """Forecasts from generated series: the model's step, a random zone, a random length
    between ``LOCUST_ROWS_MIN`` and ``LOCUST_ROWS_MAX``."""

    mode = "synthetic"

    @task
    def synthetic(self) -> None:
        config = RUNTIME.config
        req = synthetic_request(
            self.rng,
            rows=self.rng.randint(config.rows_min, config.rows_max),
            step_ns=RUNTIME.facts.step_ns,
            zone=self.rng.choice(config.zones),
            column=config.column,
            inference_length=self._length(),
        )
        self.forecast(req, "/predict synthetic")


class RealUser(ServiceUser):
    """Forecasts from contiguous windows of the real series (S3 object or bundled file)."""

    mode = "real"

    @task
    def real(self) -> None:
        config = RUNTIME.config
        series = RUNTIME.series
        assert series is not None
        rows = self.rng.randint(config.rows_min, min(config.rows_max, series.longest_run))
        req = real_request(series, self.rng, rows=rows, inference_length=self._length())
        self.forecast(req, "/predict real")


class BadInputUser(ServiceUser):
    """Each invalid case; a success only when the server answers the documented 4xx."""

    mode = "bad"

    @task
    def invalid(self) -> None:
        case = self.rng.choice(RUNTIME.cases)
        with self.client.post(
            "/predict",
            data=case.body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers={"Content-Type": case.content_type},
            name=f"/predict bad:{case.name}",
            catch_response=True,
        ) as response:
            error = check_problem(
                case,
                response.status_code,
                _header(response, "Content-Type"),
                _content(response),
            )
            if error is None:
                response.success()
            elif response.status_code == 0:
                response.failure(f"{case.name}: no HTTP response: {response.error!r}")
            else:
                response.failure(error)
