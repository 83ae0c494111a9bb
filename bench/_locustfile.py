"""Locust user of ``bench.compare``: ``POST /predict`` with ``{}``, the response checked.

``locust -f bench/_locustfile.py --headless ...``; the same user drives every design, so a
design that answers fast but wrong (not 200, or not one prediction) counts failures.
"""

from __future__ import annotations

import json

from locust import FastHttpUser, task


class PredictUser(FastHttpUser):
    """No think time: each user sends its next request as soon as the last one returns."""

    network_timeout = 120.0
    connection_timeout = 30.0

    @task
    def predict(self) -> None:
        with self.client.post(
            "/predict",
            data="{}",
            headers={"Content-Type": "application/json"},
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"status {resp.status_code}")
                return
            try:
                predictions = json.loads(resp.content)["predictions"]
            except (ValueError, KeyError, TypeError):
                resp.failure("response is not a forecast")
                return
            if len(predictions) != 1:
                resp.failure(f"{len(predictions)} predictions instead of 1")
