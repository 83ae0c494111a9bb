"""Gunicorn settings of the per-worker-cache baseline (``bench.baselines.private``).

``WEB_BIND`` (``host:port`` or ``fd://n``, default 127.0.0.1:8001) and ``WEB_CONCURRENCY``
(default: cores + 1) as in the service's ``gunicorn.conf.py``; sync workers, the app
preloaded in the master like the service's, and each worker loads its own window and starts
its own consumer after the fork.
"""

from __future__ import annotations

import os
from typing import Any

from bench.baselines.private import start_worker, stop_worker

_cores = len(os.sched_getaffinity(0))

bind = [os.environ.get("WEB_BIND", "127.0.0.1:8001")]
workers = int(os.environ.get("WEB_CONCURRENCY", str(_cores + 1)))
worker_class = "sync"
preload_app = True
timeout = 120  # loading a 1 GiB copy per worker takes seconds on a busy machine
worker_tmp_dir = "/dev/shm"
control_socket_disable = True
loglevel = "warning"
accesslog = None


def post_worker_init(worker: Any) -> None:
    start_worker()


def worker_exit(server: Any, worker: Any) -> None:
    stop_worker()
