"""Container health check for both commands of the image; exit 0 = healthy, 1 = not.

Usage::

    python deploy/healthcheck.py web      # GET http://127.0.0.1:$PORT/healthz answers 200
    python deploy/healthcheck.py daemon   # $SHM_DIR/daemon-status.json has a fresh heartbeat
    python deploy/healthcheck.py          # picks by PID 1's command line (Docker HEALTHCHECK)

The daemon check is the liveness contract of the status file (:mod:`contract.status`): the
daemon rewrites it at least once a second, also while Kafka or S3 are down (state
"degraded"), so a heartbeat older than ``MAX_DATA_AGE_MS`` (default 10000) means the daemon's
loop is stuck or gone, never merely that its sources are. Whether the data is fresh enough to
serve is the web container's ``/readyz``.

The heartbeat must also be the running daemon's: a restarted container finds the previous
run's status in the shared volume, still fresh, and its probes wait for the new process's own
(``_writer_gone``: the status's ``pid`` must be running, with the start it records).

The probe imports only :mod:`contract.defaults` and :mod:`contract.status`, which use the
standard library alone: an exec probe runs every few seconds and must cost a bare
interpreter start, not an import of pyarrow or pydantic.
"""

from __future__ import annotations

import http.client
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from contract import defaults
from contract.status import STATUS_FILE, DaemonStatus, process_start_ticks

HTTP_TIMEOUT_S = 2.0


def _max_age_ms(environ: Mapping[str, str]) -> int:
    """The heartbeat's age bound; ``ValueError`` naming ``MAX_DATA_AGE_MS`` when unusable."""
    raw = environ.get("MAX_DATA_AGE_MS") or str(defaults.MAX_DATA_AGE_MS)
    try:
        bound = int(raw)
    except ValueError:
        raise ValueError(f"MAX_DATA_AGE_MS is not an integer: {raw!r}") from None
    if bound < defaults.MIN_MAX_DATA_AGE_MS:
        raise ValueError(f"MAX_DATA_AGE_MS must be >= {defaults.MIN_MAX_DATA_AGE_MS}, got {bound}")
    return bound


def check_daemon(environ: Mapping[str, str], now_ns: int | None = None) -> str | None:
    """None when the status file's heartbeat is younger than ``MAX_DATA_AGE_MS``, else why not."""
    path = Path(environ.get("SHM_DIR") or defaults.SHM_DIR) / STATUS_FILE
    try:
        max_age_ms = _max_age_ms(environ)
    except ValueError as exc:
        return str(exc)
    try:
        status = DaemonStatus.from_bytes(path.read_bytes())
    except FileNotFoundError:
        return f"{path} does not exist yet"
    except OSError as exc:
        return f"{path} is unreadable: {exc}"
    if status is None or status.heartbeat_ns is None:
        return f"{path} is unreadable: no JSON object with an integer heartbeat_ns"
    age_ms = ((time.time_ns() if now_ns is None else now_ns) - status.heartbeat_ns) // 1_000_000
    if age_ms > max_age_ms:
        return f"heartbeat is {age_ms} ms old (bound {max_age_ms} ms, state {status.state})"
    return _writer_gone(status)


def _writer_gone(status: DaemonStatus, proc: Path = Path("/proc")) -> str | None:
    """Why the status cannot be the running daemon's, or None.

    A restarted container keeps the shared volume, and with it the status file of the daemon
    that ran before, whose heartbeat stays fresh for up to ``MAX_DATA_AGE_MS``. The probe runs
    in the daemon's container (its PID namespace), so the writer must be the running process
    ``pid`` with the start the status records (``start_ticks``, clock ticks after boot: exact,
    and unmoved by a step of the wall clock). A process with that pid and another start is a
    new daemon still starting. None also when the status names no pid or start (an older
    daemon), or ``proc`` cannot tell (not Linux).
    """
    if status.pid is None or status.start_ticks is None or not (proc / "self").exists():
        return None
    ticks = process_start_ticks(status.pid, proc)
    if ticks is None:
        return f"the daemon that wrote the status (pid {status.pid}) is not running"
    if ticks != status.start_ticks:
        return (
            f"the status was written by an earlier daemon: pid {status.pid} is another "
            "process (a restarted container; the new daemon has not written its own yet)"
        )
    return None


def check_web(environ: Mapping[str, str]) -> str | None:
    """None when ``GET /healthz`` on the local port answers 200, else why not."""
    port = int(environ.get("PORT") or 8000)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)
    try:
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
    except OSError as exc:
        return f"GET /healthz on port {port} failed: {exc}"
    finally:
        conn.close()
    return None if status == 200 else f"GET /healthz on port {port} answered {status}"


def role_of_pid1(cmdline_path: Path = Path("/proc/1/cmdline")) -> str:
    """``daemon`` when PID 1 (tini or docker-init, with the command after it) runs the cache
    daemon, else ``web``."""
    try:
        args = cmdline_path.read_bytes().split(b"\0")
    except OSError:
        return "web"
    return "daemon" if b"cache_daemon" in args else "web"


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the check named by ``argv[0]`` (``web``, ``daemon``, or auto when absent)."""
    role = argv[0] if argv else role_of_pid1()
    if role == "daemon":
        problem = check_daemon(environ)
    elif role == "web":
        problem = check_web(environ)
    else:
        print(f"unknown check {role!r}; use 'web' or 'daemon'", file=sys.stderr)
        return 2
    if problem is not None:
        print(f"{role} unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
