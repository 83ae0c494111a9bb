"""The real service for load-test tests: ``python -m cache_daemon`` (replay source) publishing
into a fresh shm directory, and Gunicorn with several workers serving it on loopback
(``tests.webapp._support.GunicornServer``). Nothing is mocked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shm import Reader
from tests import _proc
from tests.webapp._support import GunicornServer, train_artifact

__all__ = ["ROOT", "LiveService", "clean_env", "live_service", "run_locust"]

ROOT = _proc.ROOT
# Variables that would change what the service or the load test does behind a test's back.
_PREFIXES = ("LOCUST_", "KAFKA_", "S3_", "SNAPSHOT_", "MODEL_", "DAEMON_", "REPLAY_", "MAX_")


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the project's service and load-test variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    env.pop("SHM_DIR", None)
    return {**env, **extra}


@dataclass
class LiveService:
    url: str
    shm_dir: Path
    web: GunicornServer
    daemon: subprocess.Popen[bytes]

    def generation(self) -> int:
        reply = self.web.request("GET", "/cache")
        assert reply.status == 200, reply.body
        generation: int = reply.json()["generation"]
        return generation


def _wait_model(shm_dir: Path, daemon: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited: {log.read_text()[-3000:]}")
        snap = Reader(shm_dir).current() if shm_dir.exists() else None
        if snap is not None and snap.metadata.get("model_file"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no generation with a model: {log.read_text()[-3000:]}")


@contextmanager
def live_service(
    *, workers: int = 3, replay_rate: float = 20.0, daemon_env: Mapping[str, str] | None = None
) -> Iterator[LiveService]:
    """Train a model, start the daemon (replay source unless ``daemon_env`` says otherwise)
    and Gunicorn, wait until ``/readyz`` says ready."""
    parent = Path(tempfile.mkdtemp(prefix="locust-test-", dir="/dev/shm"))
    shm_dir = parent / "window"
    log = parent / "daemon.log"
    daemon: subprocess.Popen[bytes] | None = None
    web: GunicornServer | None = None
    try:
        model = parent / "model.skops"
        artifact = train_artifact()
        model.write_bytes(artifact)
        sha = hashlib.sha256(artifact).hexdigest()
        model.with_name(model.name + ".sha256").write_text(sha + "\n")
        env = clean_env(
            **{
                "SHM_DIR": str(shm_dir),
                "MODEL_PATH": str(model),
                "DAEMON_SOURCE": "replay",
                "REPLAY_RATE": str(replay_rate),
                "PUBLISH_INTERVAL_MS": "50",
                "LOG_LEVEL": "WARNING",
                **(daemon_env or {}),
            }
        )
        daemon = _proc.start([sys.executable, "-m", "cache_daemon"], env, log)
        _wait_model(shm_dir, daemon, log)
        web = GunicornServer({"SHM_DIR": str(shm_dir)}, workers=workers)
        web.wait_ready()
        deadline = time.monotonic() + 30
        while web.request("GET", "/readyz").status != 200:
            assert time.monotonic() < deadline, web.request("GET", "/readyz").body
            time.sleep(0.1)
        yield LiveService(f"http://127.0.0.1:{web.port}", shm_dir, web, daemon)
    finally:
        if web is not None:
            web.stop()
        if daemon is not None:
            _proc.stop(daemon, grace=20)
        shutil.rmtree(parent, ignore_errors=True)


def run_locust(
    host: str,
    env: Mapping[str, str],
    *args: str,
    users: int,
    seconds: int | None,
    timeout_s: float = 120.0,
) -> subprocess.CompletedProcess[str]:
    """``locust -f locustfiles --headless`` for ``seconds`` (None: no ``-t``) with ``users``,
    on loopback; always ends within ``timeout_s``."""
    assert host.startswith(("http://127.0.0.1:", "http://localhost:")), host
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        "locustfiles",
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        *(["-t", f"{seconds}s"] if seconds is not None else []),
        "--host",
        host,
        *args,
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
