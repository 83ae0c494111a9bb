"""``python -m scripts.run_local`` (``make run``) as a child of a test: its supervisor, daemon
and Gunicorn on a free loopback port, in a private /dev/shm directory, with a clean
environment; ready when ``/readyz`` answers 200, stopped by SIGINT."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.webapp._support import ROOT, remove_tree


def clean_environment() -> dict[str, str]:
    """What the children inherit from this process: PATH only, as the daemon tests do, so
    a developer's KAFKA_*, S3_*, SHM_DIR or WEB_* settings never change what is tested."""
    return {"PATH": os.environ.get("PATH", "")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, Any]:
    """Status and JSON body of ``GET path``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def post(port: int, path: str, body: Any) -> tuple[int, Any]:
    """Status and JSON body of ``POST path`` with ``body`` as JSON."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@dataclass(frozen=True)
class RunLocal:
    """A running ``scripts.run_local``: the supervisor's process, its port and its log."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-3000:]


@contextlib.contextmanager
def run_local(run_dir: Path, **settings: str) -> Iterator[RunLocal]:
    """``scripts.run_local`` with ``RUN_DIR=run_dir`` (its log: ``run_dir``/run.log) and
    ``settings`` (``MODEL_PATH``, ``RUN_DATA``, ``WEB_CONCURRENCY``...) until ready. Leaving
    the block normally sends SIGINT, which must stop it with exit code 0 within 40 s; any
    way out kills it if it is still running and removes its shm directory."""
    parent = Path(tempfile.mkdtemp(prefix="webapp-test-", dir="/dev/shm"))
    port = free_port()
    env = {
        **clean_environment(),
        "RUN_DIR": str(run_dir),
        "SHM_DIR": str(parent / "run"),
        "PORT": str(port),
        "WEB_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    log = run_dir / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_local"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own process group: a failed test ends its children too
        )
    run = RunLocal(proc, port, log)
    try:
        deadline, ready = time.monotonic() + 60, False
        while time.monotonic() < deadline and not ready:
            assert proc.poll() is None, run.tail()
            with contextlib.suppress(OSError):
                ready = get(port, "/readyz")[0] == 200
            time.sleep(0.2)
        assert ready, run.tail()
        yield run
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0, run.tail()
    finally:
        if proc.poll() is None:
            # The supervisor's daemon and Gunicorn would outlive a SIGKILL of the supervisor
            # alone, and go on using CPU and the shm directory.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_tree(parent)
