"""Locust user for ``bench.http``: one endpoint per run, responses checked, not just statuses.

Run by ``bench.http`` as ``locust -f bench/_locust_http.py --headless --target predict|healthz``.
"""

from __future__ import annotations

from typing import Any

from locust import FastHttpUser, events, task


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument("--target", choices=["healthz", "predict"], default="predict")


class BenchUser(FastHttpUser):
    """No think time: each user sends its next request as soon as the last one returns."""

    @task
    def hit(self) -> None:
        if self.environment.parsed_options.target == "healthz":
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
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            # Byte checks, not json.loads: the load generator shares the CPU with the server.
            generation = resp.headers.get("X-Cache-Generation")
            if not generation or f'"generation":{generation},'.encode() not in resp.content:
                resp.failure("X-Cache-Generation missing or differs from the body")
            elif resp.content.count(b'"time":') != 1:
                resp.failure("expected exactly one prediction")
