"""The Locust user of the benchmarks: one endpoint per run, responses checked, not just statuses.

``locust -f bench/_locustfile.py --headless [--target predict|healthz] [--check-generation]
[--cpu-json PATH]`` (:class:`bench._locust.Locust` runs it). ``/predict`` is sent ``{}`` and
must answer 200 with exactly one prediction, so a design that answers fast but wrong counts
failures; ``--check-generation`` also requires the service's ``X-Cache-Generation`` header to
name the body's generation. ``--cpu-json`` writes this process's CPU from the moment every
user runs (when ``--reset-stats`` starts the figures) to the end of the test
(:class:`locustfiles.CpuUsage`): the generator's own share of the machine. ``--running-file``
is created at that moment too.
"""

from __future__ import annotations

import json
from typing import Any

from locust import FastHttpUser, events, task

from locustfiles import CpuMeter

_BODY = b"{}"
_HEADERS = {"Content-Type": "application/json"}
_METER = CpuMeter()


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument("--target", choices=["healthz", "predict"], default="predict")
    parser.add_argument("--check-generation", action="store_true", default=False)
    parser.add_argument("--cpu-json", default="", help="write Locust's own CPU here as JSON")
    parser.add_argument("--running-file", default="", help="created once every user runs")


_ENVIRONMENT: list[Any] = []


@events.init.add_listener  # type: ignore[untyped-decorator]
def _init(environment: Any, **_: Any) -> None:
    _ENVIRONMENT.append(environment)  # spawning_complete does not pass it


@events.spawning_complete.add_listener  # type: ignore[untyped-decorator]
def _steady(**_: Any) -> None:
    _METER.start()
    options = _ENVIRONMENT[0].parsed_options if _ENVIRONMENT else None
    if options is not None and options.running_file:
        with open(options.running_file, "w", encoding="utf-8"):
            pass


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _write_cpu(environment: Any, **_: Any) -> None:
    path = environment.parsed_options.cpu_json
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(_METER.read().as_dict(), out)


class BenchUser(FastHttpUser):
    """No think time: each user sends its next request as soon as the last one returns."""

    network_timeout = 120.0
    connection_timeout = 30.0

    @task
    def hit(self) -> None:
        options = self.environment.parsed_options
        if options.target == "healthz":
            with self.client.get("/healthz", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"status {resp.status_code}")
            return
        post: Any = self.client.post  # annotated for str data; bytes are sent as they are
        with post("/predict", data=_BODY, headers=_HEADERS, catch_response=True) as resp:
            # Byte checks, not json.loads: the load generator shares the CPU with the server.
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif resp.content.count(b'"time":') != 1:
                resp.failure("expected exactly one prediction")
            elif options.check_generation:
                generation = resp.headers.get("X-Cache-Generation")
                if not generation or f'"generation":{generation},'.encode() not in resp.content:
                    resp.failure("X-Cache-Generation missing or differs from the body")
