"""The servers the benchmarks measure, started through :class:`bench._proc.Server`.

:func:`ours` is the service (``gunicorn -c gunicorn.conf.py webapp.wsgi:app`` on an shm
directory); :func:`seed` and :func:`private` are the baselines of ``bench.baselines``.
:func:`wait_workers` waits until every worker of a server has answered ``/cache``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench._proc import Server

__all__ = ["ours", "private", "seed", "wait_workers"]


def _gunicorn(
    name: str, args: list[str], env: Mapping[str, str], logdir: Path, workers: int | None
) -> Server:
    def build(fd: int) -> tuple[list[str], dict[str, str]]:
        extra = {**env, "WEB_BIND": f"fd://{fd}"}
        if workers:
            extra["WEB_CONCURRENCY"] = str(workers)
        return [sys.executable, "-m", "gunicorn", *args], extra

    return Server(name, build, logdir)


def ours(
    shm_dir: Path,
    logdir: Path,
    *,
    workers: int | None = None,
    extra: Mapping[str, str] | None = None,
) -> Server:
    """The service serving ``shm_dir`` (workers: the config's default, cores + 1, unless
    given; ``extra``: more of its environment)."""
    env = {
        "SHM_DIR": str(shm_dir),
        "WEB_ACCESS_LOG": "",
        "WEB_TIMEOUT": "120",  # warming up on a 1 GiB window takes seconds per worker
        **(extra or {}),
    }
    return _gunicorn("ours", ["-c", "gunicorn.conf.py", "webapp.wsgi:app"], env, logdir, workers)


def private(config: Mapping[str, str], logdir: Path, *, workers: int | None = None) -> Server:
    """The per-worker-cache baseline on Gunicorn; ``config`` = its environment."""
    args = ["-c", "bench/baselines/gunicorn_private.py", "bench.baselines.private:app"]
    return _gunicorn("private", args, config, logdir, workers)


def seed(config: Mapping[str, str], logdir: Path) -> Server:
    """The seed design on uvicorn (uvloop, httptools); ``config`` = its environment."""

    def build(fd: int) -> tuple[list[str], dict[str, str]]:
        # Not `uvicorn --fd`: it takes the socket for AF_UNIX (see bench.baselines.uvicorn_fd).
        return [sys.executable, "-m", "bench.baselines.uvicorn_fd", str(fd)], dict(config)

    return Server("seed", build, logdir)


def wait_workers(
    server: Server,
    workers: int,
    *,
    ready: Callable[[dict[str, Any]], bool] = lambda body: True,
    timeout: float = 180.0,
) -> set[int]:
    """Poll ``/cache`` from ``workers + 1`` threads (a worker still warming up holds only its
    own requests) until ``workers`` distinct pids answered 200 with a body ``ready`` accepts;
    their pids. ``TimeoutError`` after ``timeout`` s."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout

    def poll() -> None:
        while len(seen) < workers and time.monotonic() < deadline:
            try:
                status, body = server.get_json("/cache", timeout=60)
            except OSError:
                time.sleep(0.05)
                continue
            if status == 200 and isinstance(body, dict) and ready(body):
                seen.add(int(body["pid"]))
            else:
                time.sleep(0.01)

    threads = [threading.Thread(target=poll) for _ in range(workers + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(seen) < workers:
        raise TimeoutError(f"{server.name}: only {len(seen)} of {workers} workers were ready")
    return seen
