"""Locust user for ``bench.http``: one endpoint per run, responses checked, not just statuses.

Run by ``bench.http`` as ``locust -f bench/_locust_http.py --headless --target predict|healthz``.
"""

from __future__ import annotations

import json
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
            body = json.loads(resp.content)
            if not isinstance(body.get("generation"), int) or len(body.get("predictions", [])) != 1:
                resp.failure("response lacks a generation or one prediction")
            elif resp.headers.get("X-Cache-Generation") != str(body["generation"]):
                resp.failure("X-Cache-Generation differs from the body")
