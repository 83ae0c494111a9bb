"""Load shapes as pure functions of elapsed time (the Locust ``LoadTestShape`` calls these).

``users`` and ``spawn_rate`` are Locust's ``-u``/``-r``; ``run_time_s`` is ``-t``.

- ``steady``: ``users`` from the start until the run time ends (or forever without one).
- ``ramp``:   a staircase of :data:`RAMP_STEPS` equal stages, ``users/STEPS`` more each stage,
  reaching ``users`` in the last one: where latency bends, capacity ends.
- ``spike``:  a baseline of a quarter of ``users``; during the middle fifth of the run
  (40 %..60 %) all ``users`` at once (spawned within a second), then back to the baseline.
"""

from __future__ import annotations

import math

__all__ = ["RAMP_STEPS", "SHAPES", "needs_run_time", "target"]

SHAPES = ("steady", "ramp", "spike")
RAMP_STEPS = 5
_SPIKE = (0.4, 0.6)
_BASELINE = 0.25


def needs_run_time(shape: str) -> bool:
    return shape != "steady"


def target(
    shape: str, elapsed_s: float, users: int, spawn_rate: float, run_time_s: float | None
) -> tuple[int, float] | None:
    """``(user count, spawn rate)`` at ``elapsed_s``, or None when the run is over."""
    if run_time_s is not None and elapsed_s >= run_time_s:
        return None
    if shape == "steady":
        return users, spawn_rate
    if run_time_s is None:
        raise ValueError(f"the {shape} shape needs a run time")
    fraction = elapsed_s / run_time_s
    if shape == "ramp":
        stage = min(RAMP_STEPS - 1, int(fraction * RAMP_STEPS))
        return max(1, math.ceil(users * (stage + 1) / RAMP_STEPS)), spawn_rate
    if shape == "spike":
        if _SPIKE[0] <= fraction < _SPIKE[1]:
            return users, max(spawn_rate, float(users))
        return max(1, math.ceil(users * _BASELINE)), max(spawn_rate, float(users))
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
