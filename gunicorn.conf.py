"""Gunicorn settings for ``gunicorn -c gunicorn.conf.py webapp.wsgi:app``.

Every setting comes from the environment with a default that suits one container:

==========================  ======================================================  ==========
variable                    meaning                                                 default
==========================  ======================================================  ==========
WEB_BIND / PORT, WEB_HOST   listen address (``WEB_BIND`` wins: ``host:port``,         127.0.0.1:8000
                            ``unix:path`` or ``fd://n``)
WEB_CONCURRENCY             worker processes                                        cores + 1
WEB_WORKER_CLASS            ``gevent``, ``gthread`` or ``sync``                     gevent
WEB_WORKER_CONNECTIONS      open connections per gevent worker                      1000
WEB_THREADS                 threads per gthread worker                              2
WEB_TIMEOUT                 seconds a silent worker lives before it is killed        30
WEB_GRACEFUL_TIMEOUT        seconds to finish requests on shutdown                   20
WEB_KEEPALIVE               keep-alive seconds; under gevent also the time allowed   5
                            to send a request line and headers (sync closes each
                            connection)
WEB_MAX_REQUESTS            requests before a worker is recycled (0 = never)         50000
WEB_MAX_REQUESTS_JITTER     random extra so workers do not recycle together         5000
WEB_PRELOAD                 import the app in the master (copy-on-write, fast fork)  true
WEB_ACCESS_LOG              access log destination (``-`` stdout, empty = off)       ``-``
WEB_BLAS_THREADS            BLAS/OpenMP threads per worker                          1
PROMETHEUS_MULTIPROC_DIR    metrics directory shared by workers (wiped at start)    a fresh dir
                                                                                    in /dev/shm
LOG_LEVEL                   log level                                               INFO
==========================  ======================================================  ==========

Worker class: ``gevent``. A request is a few hundred microseconds of CPU-bound Python and
numpy under the GIL, so one request at a time per process is enough; what matters is that a
slow client must not hold a worker. Sync and gthread workers give each connection a process
or thread until its request is read, so six clients trickling their bodies stalled the
service. The gevent worker parks every connection in an event loop (``worker_connections``
per worker) until its request is complete; Gunicorn bounds the request line and headers by
``keepalive`` seconds and :mod:`webapp.deadline` bounds the body (``REQUEST_BODY_TIMEOUT_S``).
The measurements behind the choice are in ``docs/web-api.md`` ("Slow clients and request
limits"). ``gthread`` and ``sync`` remain for deployments behind a buffering proxy. The
heartbeat ``timeout`` still replaces a stuck worker.

Process model: the master never opens the window or the model, and never predicts. BLAS
and OpenMP are capped before numpy is imported and again per worker (``post_fork``), because
thread pools started in a preloading master deadlock forked children. Each worker opens its
``shm.Reader``, loads the model and derives the window's features in ``post_worker_init``
(the first hook where the app object exists in the worker).
"""

# ruff: noqa: E402  (environment variables must be set before the imports below run)

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

_env = os.environ


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = _env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_bool(name: str, default: bool) -> bool:
    raw = _env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in {"1", "0", "true", "false", "yes", "no"}:
        raise SystemExit(f"{name} must be true or false, got {raw!r}")
    return raw in {"1", "true", "yes"}


_blas_threads = str(_env_int("WEB_BLAS_THREADS", 1, minimum=1))
for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
):
    _env.setdefault(_var, _blas_threads)


def _metrics_dir() -> tuple[Path, bool]:
    """Choose and wipe the Prometheus multiprocess directory, once per master; return it and
    whether this master created it.

    A configuration reload (SIGHUP) re-executes this file in the same master: the marker
    variable stops it from wiping the files of workers that are still running.
    """
    if _env.get("WEBAPP_METRICS_OWNER") == str(os.getpid()):
        return Path(_env["PROMETHEUS_MULTIPROC_DIR"]), _env.get("WEBAPP_METRICS_CREATED") == "1"
    given = _env.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    if given:
        path = Path(given)
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
        path = Path(tempfile.mkdtemp(prefix="webapp-metrics-", dir=base))
    _env["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    _env["WEBAPP_METRICS_OWNER"] = str(os.getpid())
    _env["WEBAPP_METRICS_CREATED"] = "0" if given else "1"
    return path, not given


_METRICS_DIR, _OWN_METRICS_DIR = _metrics_dir()

# Only now may anything import prometheus_client (the app does, when it is loaded).
import gunicorn.util
from gunicorn.glogging import Logger
from prometheus_client import multiprocess
from threadpoolctl import threadpool_limits

# -- settings ---------------------------------------------------------------------------------

_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

bind = [_env.get("WEB_BIND") or f"{_env.get('WEB_HOST', '127.0.0.1')}:{_env_int('PORT', 8000)}"]
workers = _env_int("WEB_CONCURRENCY", _cores + 1, minimum=1)
worker_class = _env.get("WEB_WORKER_CLASS", "gevent")
if worker_class not in {"gevent", "sync", "gthread"}:
    raise SystemExit(f"WEB_WORKER_CLASS must be gevent, gthread or sync, got {worker_class!r}")
threads = _env_int("WEB_THREADS", 2, minimum=1) if worker_class == "gthread" else 1
if worker_class == "gevent":
    worker_class = "webapp.gevent_worker.GeventWorker"  # gevent, closing connections gracefully
worker_connections = _env_int("WEB_WORKER_CONNECTIONS", 1000, minimum=1)
timeout = _env_int("WEB_TIMEOUT", 30, minimum=1)
graceful_timeout = _env_int("WEB_GRACEFUL_TIMEOUT", 20, minimum=1)
# Under gevent the keep-alive timeout is also what bounds the time to send a request's head;
# 0 would leave it unbounded.
keepalive = _env_int("WEB_KEEPALIVE", 5, minimum=1 if worker_class.endswith("GeventWorker") else 0)
max_requests = _env_int("WEB_MAX_REQUESTS", 50_000)
max_requests_jitter = _env_int("WEB_MAX_REQUESTS_JITTER", 5_000)
preload_app = _env_bool("WEB_PRELOAD", True)
# The heartbeat file is touched constantly; on a disk-backed /tmp that can stall workers.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# A fixed control socket path would collide between servers on one host.
control_socket_disable = True
limit_request_line = 4096
limit_request_fields = 64
limit_request_field_size = 8190
forwarded_allow_ips = _env.get("WEB_FORWARDED_ALLOW_IPS", "127.0.0.1")
proc_name = "webapp"
loglevel = _env.get("LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = _env.get("WEB_ACCESS_LOG", "-") or None


# -- logging: JSON lines, the generation in each access line, never a payload ----------------


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
        }
        if isinstance(record.msg, dict):
            out.update(record.msg)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class JsonLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger with JSON lines. Access lines carry method, path (no query string),
    status, bytes, duration and the ``X-Cache-Generation`` of the response."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                handler.setFormatter(_JsonFormatter())

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        """Log one access line; never raise.

        Workers call this for the app's responses and, in ``handle_error``, for requests
        Gunicorn refuses itself, just before writing the error reply: an exception here
        would leave that client with no reply at all.
        """
        if not self.access_log_enabled:
            return
        try:
            line = _access_line(resp, req, environ, request_time)
        except Exception:  # noqa: BLE001 (a log line must never cost a client its reply)
            self.error_log.exception("access log line failed")
            return
        self.access_log.info(line)


def _status_code(resp: Any) -> int | None:
    """The response's status code.

    The app's responses carry ``status_code``; the response object Gunicorn builds for its
    own error replies only has the ``status`` string ("400 Bad Request").
    """
    code = getattr(resp, "status_code", None)
    if isinstance(code, int):
        return code
    head = str(getattr(resp, "status", None) or "").split(" ", 1)[0]
    return _client_status(int(head)) if head.isdigit() else None


def _client_status(status_int: int) -> int:
    """The status this server sends for one Gunicorn chose.

    Gunicorn answers 501 to a transfer coding it does not implement (RFC 9112, section 6.1,
    says SHOULD). Here every coding but ``chunked`` is a client's mistake like any other bad
    framing, and 5xx stays reserved for the server's own faults (the 5xx alert counts them),
    so it is a 400.
    """
    return 400 if status_int == 501 else status_int


def _access_line(resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
    generation = None
    for name, value in getattr(resp, "headers", None) or ():
        if name.lower() == "x-cache-generation" and str(value).isdigit():
            generation = int(value)
    return {
        "event": "access",
        "remote": environ.get("REMOTE_ADDR"),
        "method": environ.get("REQUEST_METHOD"),
        # Gunicorn's error replies get an environ without PATH_INFO.
        "path": environ.get("PATH_INFO") or getattr(req, "path", None),
        "status": _status_code(resp),
        "bytes": getattr(resp, "sent", None),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "generation": generation,
    }


logger_class = JsonLogger


# -- errors Gunicorn answers itself (bad request line, headers, chunking) ---------------------

_GUNICORN_SLUGS = {
    400: "bad-request",
    403: "forbidden",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "header-fields-too-large",
    500: "internal-error",
}


def _write_problem(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """problem+json in place of Gunicorn's HTML page, so no answer of this server is HTML."""
    if _client_status(status_int) != status_int:
        status_int, reason = _client_status(status_int), "Bad Request"
    body = json.dumps(
        {
            "type": f"/problems/{_GUNICORN_SLUGS.get(status_int, 'http-error')}",
            "title": reason,
            "status": status_int,
            "detail": mesg[:200] or "the server failed; see logs",
            "errors": [],
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


# Gunicorn's workers call util.write_error for requests they reject before the app runs.
gunicorn.util.write_error = _write_problem


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
    threadpool_limits(limits=int(_blas_threads))


def post_worker_init(worker: Any) -> None:
    """Open the shm reader, load the model and derive the window's features in this worker."""
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


def child_exit(server: Any, worker: Any) -> None:
    """Runs in the master: drop the dead worker's live gauges from the aggregate."""
    multiprocess.mark_process_dead(worker.pid, str(_METRICS_DIR))  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Remove the metrics directory this master created (a given one is left in place)."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
