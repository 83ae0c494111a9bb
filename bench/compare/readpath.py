"""Measurement 1 of ``bench.compare``: what a request pays to obtain the latest window.

Each design's own read path, called in this process on the same window, medians in µs:

* ``ours``: ``shm.Reader.current()`` with the generation unchanged (every request);
* ``ours_new_generation``: the first ``current()`` after a publication (once per generation
  per worker, not per request);
* ``seed``: ``SeedService.frame_for_request()``, a deep copy under the lock;
* ``private``: ``WorkerCache.frame_for_request()``, the worker's own frame by reference;
* ``redis``: ``RedisWindowCache.latest()``, GET + unpickle over loopback (skipped with a
  message when ``redis-server`` is not installed).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._common import median_us, shm_read_us, time_call
from bench._series import series_table
from bench.baselines.errors import BaselineUnavailableError
from bench.baselines.private import WorkerCache
from bench.baselines.redis_cache import RedisServer, RedisWindowCache
from bench.baselines.seed import SeedService

__all__ = ["DESIGNS", "measure"]

DESIGNS = ("ours", "ours_new_generation", "seed", "private", "redis")


def measure(sizes: list[int], workdir: Path, *, quick: bool) -> dict[str, Any]:
    """Per design, the median µs per size (None where the design was skipped)."""
    budget = 0.1 if quick else 1.0
    result: dict[str, Any] = {"sizes": sizes, "us": {d: [] for d in DESIGNS}, "skipped_designs": {}}
    us: dict[str, list[float | None]] = result["us"]
    with ExitStack() as stack:
        redis_cache: RedisWindowCache | None = None
        try:
            server = stack.enter_context(RedisServer())
            redis_cache = RedisWindowCache(stack.enter_context(server.client()))
        except BaselineUnavailableError as exc:
            result["skipped_designs"]["redis"] = str(exc)
            print(f"  redis baseline skipped: {exc}", flush=True)
        for rows in sizes:
            table = series_table(rows)
            shm = shm_read_us(table, workdir / f"readpath-{rows}", quick=quick, budget=budget)
            us["ours"].append(shm["unchanged"])
            us["ours_new_generation"].append(shm["new_generation"])
            frame = table.to_pandas()
            del table
            repeats = 3 if rows >= 1_000_000 else 20
            seed = SeedService()
            seed.df = frame
            us["seed"].append(
                median_us(time_call(seed.frame_for_request, min_repeats=repeats, budget_s=budget))
            )
            private = WorkerCache()
            private.df = frame
            us["private"].append(
                median_us(time_call(private.frame_for_request, min_repeats=2_000, budget_s=budget))
            )
            if redis_cache is None:
                us["redis"].append(None)
            else:
                redis_cache.publish(frame)
                us["redis"].append(
                    median_us(time_call(redis_cache.latest, min_repeats=repeats, budget_s=budget))
                )
            del frame, seed, private
            print(
                f"  {rows:>11,} rows: "
                + "  ".join(f"{d} {us[d][-1]:,.2f}" for d in DESIGNS if us[d][-1] is not None)
                + "  (µs)",
                flush=True,
            )
    return result
