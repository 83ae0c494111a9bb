"""``make run`` (``python -m scripts.run_local``) as a child of the test: the same daemon,
Gunicorn configuration and supervision a user gets, on a free loopback port and a private
shm directory, with a model artifact written beforehand so nothing is trained."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from forecasting.train import write_artifact
from tests import _proc
from tests._stack import free_ports
from tests.concurrency import _http
from tests.locust._service import clean_env

__all__ = ["LocalRun", "local_run"]


@dataclass
class LocalRun:
    proc: subprocess.Popen[bytes]
    port: int
    shm_dir: Path
    log: Path

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def daemon_pid(self) -> int | None:
        """The pid of the running ``cache_daemon`` child, if one runs."""
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.proc.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if "cache_daemon" in child.cmdline() and child.status() != "zombie":
                        return child.pid
        return None

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.tail(1_000_000).splitlines() if needle in line]


@contextlib.contextmanager
def local_run(artifact: bytes, **env: str) -> Iterator[LocalRun]:
    """Start ``make run``'s program, wait for ``/readyz`` 200, stop it with SIGINT after."""
    parent = Path(tempfile.mkdtemp(prefix="local-run-", dir="/dev/shm"))
    run_dir = Path(tempfile.mkdtemp(prefix="local-run-"))
    model = run_dir / "model.skops"
    write_artifact(str(model), artifact)
    (port,) = free_ports(1)
    full_env = clean_env(
        RUN_DIR=str(run_dir),
        MODEL_PATH=str(model),
        SHM_DIR=str(parent / "run"),
        PORT=str(port),
        WEB_ACCESS_LOG="",
        LOG_LEVEL="WARNING",
        **env,
    )
    log = run_dir / "run.log"
    proc = _proc.start([sys.executable, "-m", "scripts.run_local"], full_env, log, new_session=True)
    run = LocalRun(proc, port, parent / "run", log)
    try:
        deadline = time.monotonic() + 90
        while _http.call(port, "GET", "/readyz", timeout=5).status != 200:
            assert proc.poll() is None, run.tail()
            assert time.monotonic() < deadline, f"make run not ready: {run.tail()}"
            time.sleep(0.2)
        yield run
    finally:
        _proc.stop(proc, signal.SIGINT, grace=60)
        shutil.rmtree(parent, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
