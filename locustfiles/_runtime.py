"""Per-process state the users share (imported only inside Locust: uses gevent).

One :data:`RUNTIME` per Locust process: the configuration and gates (set by the ``init``
hook), and what the first user to start prepares once for all the others: the service's
facts from the preflight, the real series (one S3 fetch per process), the invalid cases, and
the tally of ``data_age_ms`` seen in forecasts. Users run as greenlets in one thread, so the
only lock needed is the one that makes the others wait while the first prepares.
"""

from __future__ import annotations

import http.client
import logging
import random
from dataclasses import dataclass
from typing import Any

import gevent.lock

from locustfiles._bad import BadCase, bad_cases
from locustfiles._config import LoadConfig
from locustfiles._gates import GateSpec
from locustfiles._http import ServiceClient
from locustfiles._preflight import ServiceFacts, discover, preflight, wait_ready
from locustfiles._series import Series
from locustfiles._source import load_series
from locustfiles.errors import LoadTestError

__all__ = ["RUNTIME", "AgeTally", "Runtime"]

log = logging.getLogger(__name__)


@dataclass
class AgeTally:
    """``data_age_ms`` of every checked forecast: count, sum and maximum (mergeable across
    worker processes)."""

    count: int = 0
    total_ms: int = 0
    max_ms: int | None = None

    def record(self, age_ms: int) -> None:
        self.count += 1
        self.total_ms += age_ms
        self.max_ms = age_ms if self.max_ms is None else max(self.max_ms, age_ms)

    def as_dict(self) -> dict[str, int | None]:
        return {"count": self.count, "total_ms": self.total_ms, "max_ms": self.max_ms}

    def merge(self, data: Any) -> None:
        if not isinstance(data, dict) or not data.get("count"):
            return
        self.count += int(data["count"])
        self.total_ms += int(data["total_ms"])
        other = data.get("max_ms")
        if isinstance(other, int):
            self.max_ms = other if self.max_ms is None else max(self.max_ms, other)

    def reset(self) -> None:
        self.count, self.total_ms, self.max_ms = 0, 0, None


class Runtime:
    """See the module docstring."""

    def __init__(self) -> None:
        self._config: LoadConfig | None = None
        self.gates = GateSpec(())
        self._lock = gevent.lock.Semaphore()
        self._prepared = False
        self.failure: str | None = None
        self._facts: ServiceFacts | None = None
        self.series: Series | None = None
        self.cases: tuple[BadCase, ...] = ()
        self.ages = AgeTally()
        self._users = 0
        self.last_event_ns = 0
        self.stopping = False

    def configure(self, config: LoadConfig, gates: GateSpec) -> None:
        """Set the configuration; a changed one (new options from the web UI) makes the next
        user run the preflight again, since the kinds of requests may have changed."""
        if config != self._config:
            self._prepared, self.failure, self.stopping = False, None, False
        self._config = config
        self.gates = gates

    @property
    def config(self) -> LoadConfig:
        assert self._config is not None, "the init hook has not run"
        return self._config

    @property
    def facts(self) -> ServiceFacts:
        assert self._facts is not None, "prepare() has not succeeded"
        return self._facts

    def next_rng(self) -> random.Random:
        """A generator per user: reproducible from ``LOCUST_SEED`` when it is set."""
        self._users += 1
        seed = self.config.seed
        return random.Random(None if seed is None else seed * 1_000_003 + self._users)

    def prepare(self, host: str | None) -> bool:
        """Run the preflight once per process (the first caller does it, the others wait);
        True when the run may go on. On failure :attr:`failure` says why."""
        with self._lock:
            if not self._prepared:
                self._prepared = True
                try:
                    self._prepare(host)
                except (LoadTestError, OSError, http.client.HTTPException, ValueError) as exc:
                    self.failure = f"{type(exc).__name__}: {exc}"
                    log.error("preflight failed: %s", self.failure)
            return self.failure is None

    def _prepare(self, host: str | None) -> None:
        config = self.config
        if not host:
            raise LoadTestError("no host: give --host http://<service>")
        client = ServiceClient(host)
        try:
            wait_ready(client, host, config.ready_timeout_s)
            facts = discover(client, config)
            if config.weight("real"):
                self.series = load_series(config)
            if config.weight("bad"):
                self.cases = bad_cases(
                    rows=config.rows_min,
                    step_ns=facts.step_ns,
                    column=config.column,
                    max_rows=config.max_rows,
                    max_body_bytes=config.max_body_bytes,
                )
            preflight(client, host, config, series=self.series, cases=self.cases, facts=facts)
        finally:
            client.close()
        self._facts = facts
        log.info(
            "service at %s: model step %g s, default forecast length %d",
            host,
            facts.step_ns / 1e9,
            facts.default_length,
        )

    def next_event_time(self, newest_ns: int, step_ns: int) -> int:
        """A time for the next ingest event: one step after both the window's newest time
        and the last event this process produced."""
        self.last_event_ns = max(self.last_event_ns, newest_ns) + step_ns
        return self.last_event_ns


RUNTIME = Runtime()
