"""Gunicorn's settings from the environment (``gunicorn.conf.py`` reads them here).

Every variable has a default that suits one container; a bad value stops the server with a
message naming the variable (:func:`settings_or_exit`). Importing this module imports
neither numpy nor prometheus_client: ``gunicorn.conf.py`` reads it before it caps native
thread pools and chooses the metrics directory.

Worker class: ``gevent``. A request is a few hundred microseconds of CPU-bound Python and
numpy under the GIL, so one request at a time per process is enough; what matters is that a
slow client must not hold a worker. Sync and gthread workers give each connection a process
or thread until its request is read; the gevent worker parks every connection in an event
loop (``worker_connections`` per worker) until its request is complete. Gunicorn bounds the
request line and headers by ``keepalive`` seconds and :mod:`webapp.deadline` bounds the body.
``gthread`` and ``sync`` remain for deployments behind a buffering proxy. The measurements
are in ``docs/web-api.md`` ("Slow clients and request limits").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import Field, model_validator

from contract.errors import ConfigError
from contract.settings import EnvSettings, LogLevel, env

__all__ = ["BLAS_VARIABLES", "GunicornSettings", "settings_or_exit"]

# The variables through which BLAS and OpenMP libraries size their thread pools.
BLAS_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
GEVENT_WORKER = "webapp.gevent_worker.GeventWorker"


def _cores_plus_one() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (cores or 1) + 1


class GunicornSettings(EnvSettings):
    """The server's environment (see the module docstring)."""

    bind: str | None = env(
        "WEB_BIND",
        None,
        "listen address (`host:port`, `unix:path` or `fd://n`); overrides `PORT` and `WEB_HOST`",
    )
    host: str = env("WEB_HOST", "127.0.0.1", "listen host")
    port: int = env("PORT", 8000, "listen port", ge=0, le=65_535)
    workers: int = Field(
        default_factory=_cores_plus_one,
        ge=1,
        validation_alias="WEB_CONCURRENCY",
        description="worker processes",
        json_schema_extra={"doc_default": "cores + 1"},
    )
    worker_class: Literal["gevent", "gthread", "sync"] = env(
        "WEB_WORKER_CLASS",
        "gevent",
        "`gevent`, `gthread` or `sync` (the last two only behind a buffering proxy)",
    )
    worker_connections: int = env(
        "WEB_WORKER_CONNECTIONS", 1000, "open connections per gevent worker", ge=1
    )
    accept_defer_ms: float = env(
        "WEB_ACCEPT_DEFER_MS",
        20.0,
        "gevent: ms a worker holding more connections than another waits (at most twice) "
        "before accepting one, so the worker holding fewest takes it first (20 measured "
        "best); 0: no waiting",
        ge=0,
        le=1000,
    )
    threads: int = env("WEB_THREADS", 2, "threads per `gthread` worker", ge=1)
    timeout: int = env("WEB_TIMEOUT", 30, "seconds a silent worker lives before it is killed", ge=1)
    graceful_timeout: int = env(
        "WEB_GRACEFUL_TIMEOUT", 20, "seconds to finish requests on shutdown", ge=1
    )
    keepalive: int = env(
        "WEB_KEEPALIVE",
        5,
        "keep-alive seconds; under gevent also the time allowed to send the request "
        "line and headers",
        ge=0,
    )
    max_requests: int = env(
        "WEB_MAX_REQUESTS", 50_000, "requests before a worker is recycled (0: never)", ge=0
    )
    max_requests_jitter: int = env(
        "WEB_MAX_REQUESTS_JITTER",
        5_000,
        "random extra requests so that workers do not recycle together",
        ge=0,
    )
    preload: bool = env(
        "WEB_PRELOAD", True, "import the app in the master (copy-on-write, fast fork)"
    )
    access_log: str | None = env(
        "WEB_ACCESS_LOG", "-", "access log destination (`-`: stdout); set but empty turns it off"
    )
    blas_threads: int = env("WEB_BLAS_THREADS", 1, "BLAS/OpenMP threads per worker", ge=1)
    forwarded_allow_ips: str = env(
        "WEB_FORWARDED_ALLOW_IPS", "127.0.0.1", "proxies trusted for `X-Forwarded-*` headers"
    )
    log_level: LogLevel = env("LOG_LEVEL", "INFO", "level of Gunicorn's own log lines")

    @model_validator(mode="after")
    def _gevent_needs_a_keepalive(self) -> Self:
        if self.worker_class == "gevent" and self.keepalive < 1:
            raise ConfigError(
                "WEB_KEEPALIVE",
                "must be at least 1 under the gevent worker (it bounds the time to send a "
                f"request's head), got {self.keepalive}",
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """As :meth:`EnvSettings.from_env`; ``WEB_ACCESS_LOG`` set but empty turns the access
        log off (for any other variable an empty value means the default)."""
        settings = super().from_env(environ)
        given = environ.get("WEB_ACCESS_LOG")
        if given is not None and not given.strip():
            return settings.model_copy(update={"access_log": None})
        return settings

    @property
    def bind_address(self) -> str:
        return self.bind or f"{self.host}:{self.port}"

    @property
    def gunicorn_worker_class(self) -> str:
        """The class Gunicorn loads: gevent is this project's (graceful connection close)."""
        return GEVENT_WORKER if self.worker_class == "gevent" else self.worker_class

    @property
    def threads_per_worker(self) -> int:
        """``WEB_THREADS`` for gthread; one for the others."""
        return self.threads if self.worker_class == "gthread" else 1

    def blas_environment(self) -> dict[str, str]:
        """The thread-pool variables capping native libraries at ``WEB_BLAS_THREADS``."""
        return dict.fromkeys(BLAS_VARIABLES, str(self.blas_threads))


def settings_or_exit(environ: Mapping[str, str]) -> GunicornSettings:
    """The settings, or ``SystemExit`` with ``"<VARIABLE>: <problem>"``."""
    try:
        return GunicornSettings.from_env(environ)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
