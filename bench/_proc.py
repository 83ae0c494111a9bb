"""Starting and stopping a real Gunicorn for the benchmarks.

:func:`gunicorn` runs ``gunicorn -c gunicorn.conf.py webapp.wsgi:app`` from a source tree on
a loopback socket it binds first (so the port is known and never raced for), waits for
``/readyz`` and stops the server (SIGTERM, then SIGKILL) when the block ends.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ROOT", "gunicorn", "wait_ready"]

ROOT = Path(__file__).resolve().parent.parent


def wait_ready(port: int, timeout: float = 90.0) -> None:
    """Return once ``GET /readyz`` answers 200; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("gunicorn did not become ready")


@contextmanager
def gunicorn(env: Mapping[str, str], *, root: Path = ROOT) -> Iterator[int]:
    """A ready Gunicorn serving the app of the source tree ``root`` with ``env`` added to
    this process's environment; yields its port."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    full = {**os.environ, **env, "WEB_BIND": f"fd://{sock.fileno()}"}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), full.get("PYTHONPATH")]))
    full.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"],
        cwd=root,
        env=full,
        pass_fds=(sock.fileno(),),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        sock.close()
