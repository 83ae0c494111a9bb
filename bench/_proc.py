"""Child processes of the benchmarks, started, awaited and stopped one way.

:class:`Child` starts a command from the project root with the caller's environment minus the
project's variables (:func:`child_env`), its output in a log file, tied to this process (it
gets SIGTERM when this process dies, ``PR_SET_PDEATHSIG``). :meth:`Child.wait_for` polls a
readiness check until a deadline and fails at once, with the log's end, when the child exits;
:meth:`Child.stop` ends it by pid: a signal, a grace period, then SIGKILL.

:class:`Server` is a child serving HTTP on a socket this process bound to 127.0.0.1:0 and
passes by file descriptor (Gunicorn ``fd://N``, uvicorn ``--fd N``), so no port can be taken
between the choice and the bind.
"""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

__all__ = ["ROOT", "Child", "Server", "child_env", "free_ports", "get_json"]

ROOT = Path(__file__).resolve().parent.parent

# Prefixes of the project's (and Locust's) variables: none may leak from the caller's shell.
_SCRUB: tuple[str, ...] = (
    "SHM_",
    "MODEL_",
    "BASELINE_",
    "KAFKA_",
    "S3_",
    "SNAPSHOT_",
    "WINDOW_",
    "WEB_",
)
_SCRUB += ("DAEMON_", "REPLAY_", "PUBLISH_", "MAX_DATA_", "LOCUST_", "PROMETHEUS_MULTIPROC_DIR")
_THREADS = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

# `python -c _TIE <parent pid> <argv...>`: SIGTERM when the parent dies, then exec the command.
_TIE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "sys.exit(0) if os.getppid() != int(sys.argv[1]) else os.execvp(sys.argv[2], sys.argv[2:])\n"
)


def freeze_heap() -> None:
    """Move every object this process has made so far out of the cyclic garbage collector's
    reach (``gc.freeze``), after a last collection.

    For a spawned measuring process, once set up and before it measures: its imports leave
    tens to hundreds of thousands of objects, and the first full collection after them, due
    after some seconds of steady allocation, paused the paced producer (184,000 objects) for
    107-314 ms on this machine, mid-phase and at the same event in every run
    (docs/benchmarks.md)."""
    gc.collect()
    gc.freeze()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without the project's and Locust's variables, one BLAS thread,
    ``LOG_LEVEL=WARNING``, then ``extra``."""
    env = {k: v for k, v in os.environ.items() if k != "PORT" and not k.startswith(_SCRUB)}
    return {**env, **_THREADS, "LOG_LEVEL": "WARNING", **(extra or {})}


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free at the moment of the call."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


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


class Child:
    """A command running from the project root, tied to this process.

    ``env`` defaults to :func:`child_env`; output goes to ``log`` (appended) or nowhere.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        log: Path | None = None,
        pass_fds: tuple[int, ...] = (),
        cwd: Path = ROOT,
    ) -> None:
        self.name = name
        self.log = log
        with open(log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _TIE, str(os.getpid()), *argv],
                cwd=cwd,
                env=dict(child_env() if env is None else env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=pass_fds,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """This child's pid followed by its descendants' (Gunicorn workers); empty once gone."""
        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        return [self.pid, *(child.pid for child in children)]

    def tail(self, lines: int = 30) -> str:
        """The end of the log (empty without one)."""
        if self.log is None:
            return ""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def wait_for(
        self, ready: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1
    ) -> None:
        """Poll ``ready()`` (``OSError`` and HTTP errors count as not ready) until it is truthy;
        ``RuntimeError`` when the child exits first, ``TimeoutError`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before {what}: {self.tail()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: not {what} after {timeout:g} s: {self.tail()}")
            time.sleep(interval)

    def join(self, timeout: float) -> int:
        """Wait for the child to end by itself; stop it and raise ``TimeoutError`` after
        ``timeout`` s."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop(signal.SIGKILL)
            raise TimeoutError(f"{self.name} still ran after {timeout:g} s") from None

    def stop(self, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
        """Send ``sig`` unless the child has ended; SIGKILL after ``grace`` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# (listening socket's fd) -> (argv, extra environment)
Build = Callable[[int], tuple[list[str], dict[str, str]]]


class Server(Child):
    """``build(fd)``'s command serving HTTP on a loopback socket bound here; the log is
    ``<logdir>/<name>-<port>.log``."""

    def __init__(self, name: str, build: Build, logdir: Path, *, cwd: Path = ROOT) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        argv, extra = build(self.sock.fileno())
        log = logdir / f"{name}-{self.port}.log"
        super().__init__(
            name, argv, env=child_env(extra), log=log, pass_fds=(self.sock.fileno(),), cwd=cwd
        )

    def get_json(self, path: str, *, timeout: float = 5.0) -> tuple[int, Any]:
        return get_json(self.port, path, timeout=timeout)

    def wait_http(self, path: str, *, timeout: float = 120.0) -> None:
        """Until ``GET path`` answers 200."""
        self.wait_for(lambda: self.get_json(path)[0] == 200, timeout=timeout, what=f"{path} 200")

    def stop(self, sig: int = signal.SIGINT, grace: float = 30.0) -> None:
        """Quick shutdown by default (SIGINT: Gunicorn's quick stop, uvicorn's normal one)."""
        super().stop(sig, grace)
        self.sock.close()
