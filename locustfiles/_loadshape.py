"""The load shape Locust runs: steady, ramp or spike, chosen by ``--shape`` / ``LOCUST_SHAPE``
(imported only inside Locust). The profiles themselves are :func:`locustfiles._shapes.target`.

It reads Locust's common options (``-u``, ``-r``, ``-t``), so the same command works with any
shape: ``locust -f locustfiles --headless -u 20 -r 20 -t 60s --shape spike``.
"""

from __future__ import annotations

import time

from locust import LoadTestShape

from locustfiles._runtime import RUNTIME
from locustfiles._shapes import target

__all__ = ["LoadShape"]


class LoadShape(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        users = int(getattr(options, "num_users", None) or 1)
        rate = float(getattr(options, "spawn_rate", None) or 1.0)
        run_time = getattr(options, "run_time", None) or None
        elapsed = time.perf_counter() - float(self.start_time)
        return target(RUNTIME.config.shape, elapsed, users, rate, run_time)
