"""Gunicorn settings and hooks for ``gunicorn -c gunicorn.conf.py webapp.wsgi:app``.

The settings come from the environment through :class:`webapp.server_settings.GunicornSettings`
(each variable, its default and its meaning are listed there and in ``docs/web-api.md``); a
bad value stops the server with a message naming the variable. Logs are JSON lines
(:mod:`webapp.gunicorn_logging`), and requests Gunicorn refuses itself are answered with
problem+json (:mod:`webapp.gunicorn_errors`).

Process model: the master never opens the window or the model, and never predicts. BLAS
and OpenMP are capped before numpy is imported and again per worker (``post_fork``), because
thread pools started in a preloading master deadlock forked children; the Prometheus
multiprocess directory is chosen before ``prometheus_client`` is imported
(:mod:`webapp.metrics_dir`). Each worker opens its ``shm.Reader``, loads the model and
derives the window's forecast in ``post_worker_init`` (the first hook where the app object
exists in the worker).
"""

# ruff: noqa: E402  (environment variables must be set before the imports below run)

from __future__ import annotations

import gc
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from webapp.metrics_dir import claim_metrics_dir
from webapp.server_settings import settings_or_exit

_settings = settings_or_exit(os.environ)
for _name, _value in _settings.blas_environment().items():
    os.environ.setdefault(_name, _value)
_metrics_dir = claim_metrics_dir(os.environ, os.getpid())

# Only now may anything import numpy or prometheus_client (the app does, when it is loaded).
from prometheus_client import multiprocess
from threadpoolctl import threadpool_limits

from webapp import gunicorn_errors
from webapp.gunicorn_logging import JsonLogger

# -- settings ---------------------------------------------------------------------------------

bind = [_settings.bind_address]
workers = _settings.workers
worker_class = _settings.gunicorn_worker_class
threads = _settings.threads_per_worker
worker_connections = _settings.worker_connections
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout
keepalive = _settings.keepalive
max_requests = _settings.max_requests
max_requests_jitter = _settings.max_requests_jitter
preload_app = _settings.preload
# The heartbeat file is touched constantly; on a disk-backed /tmp that can stall workers.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# A fixed control socket path would collide between servers on one host.
control_socket_disable = True
limit_request_line = 4096
limit_request_fields = 64
limit_request_field_size = 8190
forwarded_allow_ips = _settings.forwarded_allow_ips
proc_name = "webapp"
loglevel = _settings.log_level.lower()
errorlog = "-"
accesslog = _settings.access_log
logger_class = JsonLogger

gunicorn_errors.install()

# -- hooks -----------------------------------------------------------------------------------


def when_ready(server: Any) -> None:
    """In the master, once the app is preloaded and before any worker is forked: move every
    object made so far out of the cyclic garbage collector's reach (``gc.freeze``).

    A collection in a worker otherwise writes to the header of every inherited object and
    copies the pages it shares with the master: measured here, about 40 MiB of unique memory
    per gevent worker (USS 62 MiB against 18 MiB) once a full collection had run.
    """
    gc.collect()
    gc.freeze()


def post_fork(server: Any, worker: Any) -> None:
    """In the new worker, before it serves: cap native thread pools for this process."""
    threadpool_limits(limits=_settings.blas_threads)


def post_worker_init(worker: Any) -> None:
    """Open the shm reader, load the model and derive the window's forecast in this worker."""
    from webapp import warm_up  # noqa: PLC0415 (the master must not import the app unasked)

    warm_up(worker.wsgi)


def pre_request(worker: Any, req: Any) -> None:
    """Close the connection after a request whose body the app will refuse without reading it.

    Gunicorn drains at most 64 KiB of an unread body before reusing a keep-alive connection;
    past that it drops the connection after having answered ``Connection: keep-alive``, and
    the client's next request on it fails. Marking such a request (larger than
    ``MAX_BODY_BYTES``, or chunked, whose size is unknown) makes the 413 say
    ``Connection: close`` so that clients open a new connection instead.
    """
    limit = worker.wsgi.config["MAX_CONTENT_LENGTH"]
    for name, value in req.headers:
        too_long = name == "CONTENT-LENGTH" and value.isdigit() and int(value) > limit
        chunked = name == "TRANSFER-ENCODING" and "chunked" in value.lower()
        if too_long or chunked:
            req.must_close = True


def worker_exit(server: Any, worker: Any) -> None:
    """In the worker, last thing before it exits: flush and close the log handlers, and
    forget them.

    Otherwise the interpreter's teardown finalizes the handlers after gevent's modules are
    gone; each finalizer then fails on logging's lock and prints an "Exception ignored in
    _removeHandlerRef" traceback, piecewise, into the output the other workers' JSON lines go
    to, where it can split one of their lines. logging has no public way to forget its
    handlers: emptying ``logging._handlerList`` (what the finalizers walk) is that way.
    """
    logging.shutdown()
    logging._handlerList.clear()  # type: ignore[attr-defined]


def child_exit(server: Any, worker: Any) -> None:
    """Runs in the master: drop the dead worker's live gauges from the aggregate."""
    multiprocess.mark_process_dead(worker.pid, str(_metrics_dir.path))  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """The master's last step before it exits: ignore further stop signals, then remove the
    metrics directory this master created (a given one is left in place).

    The interpreter resets the master's Python signal handlers to the default action while it
    finalizes, so a SIGTERM repeated then (an orchestrator or tini may send it again) would
    kill the stopping master with 143 instead of letting it exit 0.
    """
    for stop_signal in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
        signal.signal(stop_signal, signal.SIG_IGN)
    if _metrics_dir.created:
        shutil.rmtree(_metrics_dir.path, ignore_errors=True)
