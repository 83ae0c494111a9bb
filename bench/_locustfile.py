"""The Locust user of the benchmarks: one endpoint per run, responses checked, not just statuses.

``locust -f bench/_locustfile.py --headless [--target predict|healthz] [--check-generation]``
(:class:`bench._locust.Locust` runs it). ``/predict`` is sent ``{}`` and must answer 200 with
exactly one prediction, so a design that answers fast but wrong counts failures;
``--check-generation`` also requires the service's ``X-Cache-Generation`` header to name the
body's generation.
"""

from __future__ import annotations

from typing import Any

from locust import FastHttpUser, events, task


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument("--target", choices=["healthz", "predict"], default="predict")
    parser.add_argument("--check-generation", action="store_true", default=False)


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
        with self.client.post(
            "/predict",
            data="{}",
            headers={"Content-Type": "application/json"},
            catch_response=True,
        ) as resp:
            # Byte checks, not json.loads: the load generator shares the CPU with the server.
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
            elif resp.content.count(b'"time":') != 1:
                resp.failure("expected exactly one prediction")
            elif options.check_generation:
                generation = resp.headers.get("X-Cache-Generation")
                if not generation or f'"generation":{generation},'.encode() not in resp.content:
                    resp.failure("X-Cache-Generation missing or differs from the body")
