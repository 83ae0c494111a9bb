"""Locust event hooks (imported only inside Locust).

- ``init_command_line_parser``: ``--weight-<mode>`` and ``--shape`` (also in the web UI);
- ``init``: the configuration (environment + options) and the user weights; a bad value ends
  the process with exit code 2 and a line naming the variable;
- ``test_start``: the same again with the options as the web UI left them (a bad value is
  reported and the previous configuration kept);
- ``quitting``: the run summary and the SLO gates; the exit code is 0 when every gate
  passed, 1 when one failed (one line per gate says which and by how much), 2 when the
  preflight stopped the run;
- ``report_to_master`` / ``worker_report``: the data-age tally from worker processes.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from locust.env import Environment
from locust.event import Events
from locust.runners import WorkerRunner
from locust.stats import RequestStats, StatsEntry

from locustfiles._config import MODES, LoadConfig
from locustfiles._gates import GateSpec, RunSummary, evaluate
from locustfiles._ingest import INGEST_TYPE, close_producer
from locustfiles._runtime import RUNTIME, AgeTally
from locustfiles._shapes import SHAPES, needs_run_time
from locustfiles._users import ServiceUser
from locustfiles.errors import ConfigError

__all__ = ["install", "summarize"]

log = logging.getLogger(__name__)
_AGES_KEY = "locustfiles_data_age"
_installed: list[bool] = []


def summarize(stats: RequestStats, ages: AgeTally) -> RunSummary:
    """The run's figures: HTTP latency over every request type but ``INGEST``; failures
    over all of them."""
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
        max_data_age_ms=ages.max_ms,
        freshness_samples=fresh.num_requests - fresh.num_failures if fresh else 0,
        freshness_max_ms=float(fresh.max_response_time) if fresh and fresh.num_requests else None,
    )


def _add_options(parser: Any, **_: Any) -> None:
    for mode in MODES:
        parser.add_argument(
            f"--weight-{mode}",
            type=int,
            default=None,
            metavar="N",
            help=f"weight of the {mode} user (env LOCUST_WEIGHT_{mode.upper()}; 0 = off)",
        )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default=None,
        help="load shape over -u/-r/-t (env LOCUST_SHAPE; default steady)",
    )


def _configuration(
    environment: Environment, environ: Mapping[str, str], users: tuple[type[ServiceUser], ...]
) -> tuple[LoadConfig, GateSpec]:
    options = environment.parsed_options
    config = LoadConfig.from_env(environ, options)
    named = set(getattr(options, "user_classes", None) or ())
    if named:
        # User classes named on the command line run, at least with weight 1; the others not.
        weights = tuple(
            (u.mode, max(1, config.weight(u.mode)) if u.__name__ in named else 0) for u in users
        )
        config = dataclasses.replace(config, weights=weights).checked()
    gates = GateSpec.from_env(environ)
    if needs_run_time(config.shape) and not getattr(options, "run_time", None):
        raise ConfigError(f"the {config.shape} shape needs a run time (-t / --run-time)")
    return config, gates


def _configure(
    environment: Environment,
    environ: Mapping[str, str],
    users: tuple[type[ServiceUser], ...],
    *,
    at_start: bool = False,
) -> None:
    try:
        config, gates = _configuration(environment, environ, users)
    except ConfigError as exc:
        if at_start:
            log.error("options ignored, the previous configuration stays: %s", exc)
            return
        log.error("configuration error: %s", exc)
        sys.exit(2)
    if at_start and config == RUNTIME.config:
        return
    RUNTIME.configure(config, gates)
    # kafka-python logs every connection at INFO; the run's own lines matter more here.
    logging.getLogger("kafka").setLevel(logging.WARNING)
    for user in users:
        user.weight = config.weight(user.mode)
    log.info(
        "modes %s, shape %s, seed %s, gates %s",
        " ".join(f"{m}={w}" for m, w in config.weights),
        config.shape,
        config.seed,
        ", ".join(f"{g.variable}={g.limit:g}" for g in gates.gates),
    )


def _judge(environment: Environment) -> None:
    runner = environment.runner
    if runner is None or isinstance(runner, WorkerRunner):
        return
    if RUNTIME.failure is not None:
        log.error("no load was applied: the preflight failed: %s", RUNTIME.failure)
        environment.process_exit_code = 2
        return
    summary = summarize(runner.stats, RUNTIME.ages)
    log.info("run summary: %s", summary.line())
    results = evaluate(RUNTIME.gates, summary)
    failed = [r for r in results if not r.passed]
    for result in results:
        (log.error if not result.passed else log.info)(result.line())
    if failed:
        log.error("SLO gates: %d of %d failed", len(failed), len(results))
    else:
        log.info("SLO gates: all %d passed", len(results))
    environment.process_exit_code = 1 if failed else 0


def install(events: Events, environ: Mapping[str, str], users: Iterable[type[ServiceUser]]) -> None:
    """Register the hooks (once per process, whatever imports this)."""
    if _installed:
        return
    _installed.append(True)
    env = dict(environ)
    user_classes = tuple(users)

    def on_init(environment: Environment, **_: Any) -> None:
        _configure(environment, env, user_classes)

    def on_quitting(environment: Environment, **_: Any) -> None:
        close_producer()
        _judge(environment)

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        data[_AGES_KEY] = RUNTIME.ages.as_dict()
        RUNTIME.ages.reset()

    def on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        RUNTIME.ages.merge(data.get(_AGES_KEY))

    def on_reset(**_: Any) -> None:
        RUNTIME.ages.reset()

    def on_test_start(environment: Environment, **_: Any) -> None:
        _configure(environment, env, user_classes, at_start=True)
        RUNTIME.ages.reset()

    _listen(events.init_command_line_parser, _add_options)
    _listen(events.init, on_init)
    _listen(events.quitting, on_quitting)
    _listen(events.report_to_master, on_report)
    _listen(events.worker_report, on_worker_report)
    _listen(events.reset_stats, on_reset)
    _listen(events.test_start, on_test_start)


def _listen(hook: Any, handler: Callable[..., None]) -> None:
    # Locust's EventHook.add_listener is not annotated.
    hook.add_listener(handler)
