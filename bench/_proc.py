"""Start and stop the servers ``bench.compare`` measures, on loopback sockets bound here.

Each server gets a listening socket this process bound to 127.0.0.1:0 and passes by file
descriptor (Gunicorn ``fd://N``, uvicorn ``--fd N``), so no port can be taken between the
choice and the bind. Servers die with this process (``PR_SET_PDEATHSIG``), and :meth:`stop`
ends them by pid: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

__all__ = ["Server", "get_json", "ours", "private", "seed", "spawn_tied"]

ROOT = Path(__file__).resolve().parent.parent

# Variables of the project that must not leak from the caller's shell into a server.
_SCRUB = (
    "SHM_DIR",
    "MODEL_PATH",
    "BASELINE_WINDOW_FILE",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_TOPIC",
    "WINDOW_ROWS",
    "WINDOW_DURATION_S",
    "WEB_BIND",
    "WEB_CONCURRENCY",
    "PORT",
    "PROMETHEUS_MULTIPROC_DIR",
    "DAEMON_SOURCE",
)
_THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

# `python -c _TIE <parent pid> <argv...>`: SIGTERM when the parent dies, then exec the server.
_TIE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "sys.exit(0) if os.getppid() != int(sys.argv[1]) else os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def server_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without the project's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    return {**env, **_THREADS, "LOG_LEVEL": "WARNING", **extra}


def spawn_tied(
    argv: list[str], env: Mapping[str, str], log: Path, *, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the project root, output to ``log``, tied to this process."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _TIE, str(os.getpid()), *argv],
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )


def get_json(port: int, path: str, *, timeout: float = 5.0) -> tuple[int, Any]:
    """``GET path`` on 127.0.0.1:``port``: (status, parsed JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, None


@dataclass
class Server:
    """A running server: its process (the master for Gunicorn), port and log file."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    sock: socket.socket
    log: Path

    def pids(self) -> list[int]:
        """The master's pid followed by its children's (Gunicorn workers)."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [self.proc.pid, *(child.pid for child in children)]

    def wait(self, ready: Callable[[int, Any], bool], path: str, timeout: float = 120.0) -> None:
        """Poll ``GET path`` until ``ready(status, body)``; raise with the log's end if the
        server exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if ready(*get_json(self.port, path)):
                    return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready after {timeout:g} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Quick shutdown (SIGINT: Gunicorn's quick stop, uvicorn's normal one), then SIGKILL
        after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()


Build = Callable[[int], tuple[list[str], dict[str, str]]]


def _start(name: str, build: Build, logdir: Path) -> Server:
    """Bind a loopback socket, then start ``build(fd)`` = (argv, extra environment)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    argv, extra = build(sock.fileno())
    log = logdir / f"{name}-{port}.log"
    proc = spawn_tied(argv, server_env(extra), log, pass_fds=(sock.fileno(),))
    return Server(name, proc, port, sock, log)


def ours(shm_dir: Path, logdir: Path, *, workers: int | None = None) -> Server:
    """``gunicorn -c gunicorn.conf.py webapp.wsgi:app`` serving ``shm_dir`` (workers: the
    config's default, cores + 1, unless given)."""

    def build(fd: int) -> tuple[list[str], dict[str, str]]:
        extra = {
            "SHM_DIR": str(shm_dir),
            "WEB_BIND": f"fd://{fd}",
            "WEB_ACCESS_LOG": "",
            "WEB_TIMEOUT": "120",  # warming up on a 1 GiB window takes seconds per worker
        }
        if workers:
            extra["WEB_CONCURRENCY"] = str(workers)
        argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"]
        return argv, extra

    return _start("ours", build, logdir)


def seed(config: Mapping[str, str], logdir: Path) -> Server:
    """The seed design on uvicorn (uvloop, httptools); ``config`` = its environment."""

    def build(fd: int) -> tuple[list[str], dict[str, str]]:
        argv = [sys.executable, "-m", "uvicorn", "bench.baselines.seed:app", "--fd", str(fd)]
        argv += ["--log-level", "warning", "--no-access-log", "--lifespan", "on"]
        argv += ["--loop", "uvloop", "--http", "httptools", "--timeout-keep-alive", "30"]
        return argv, dict(config)

    return _start("seed", build, logdir)


def private(config: Mapping[str, str], logdir: Path, *, workers: int | None = None) -> Server:
    """The per-worker-cache baseline on Gunicorn; ``config`` = its environment."""

    def build(fd: int) -> tuple[list[str], dict[str, str]]:
        extra = {**config, "WEB_BIND": f"fd://{fd}"}
        if workers:
            extra["WEB_CONCURRENCY"] = str(workers)
        argv = [sys.executable, "-m", "gunicorn", "-c", "bench/baselines/gunicorn_private.py"]
        return [*argv, "bench.baselines.private:app"], extra

    return _start("private", build, logdir)
