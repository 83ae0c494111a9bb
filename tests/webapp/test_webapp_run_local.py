"""``python -m scripts.run_local``: daemon + Gunicorn as children, stopped cleanly by a signal."""

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

import psutil
import pytest

from forecasting.train import write_artifact
from tests._wait import wait_until
from tests.webapp._support import ROOT, new_shm_window, remove_tree

# Every test here starts make run's supervisor, daemon and Gunicorn: not a unit test.
pytestmark = pytest.mark.server


def clean_environment() -> dict[str, str]:
    """What the children inherit from this process: PATH only, as the daemon tests do, so
    a developer's KAFKA_*, S3_*, SHM_DIR or WEB_* settings never change what is tested."""
    return {"PATH": os.environ.get("PATH", "")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _moved_on(port: int, before: dict) -> dict | None:
    """``/cache`` when it serves a newer generation ending later than ``before``, else None."""
    status, cache = _get(port, "/cache")
    if status != 200:
        return None
    newer = cache["generation"] > before["generation"] and cache["time_max"] > before["time_max"]
    return cache if newer else None


def test_run_local_serves_predictions_and_stops_both_children_on_sigint(artifact, tmp_path):
    window, parent = new_shm_window(artifact)  # only for a private /dev/shm directory
    window.close()
    shm_dir = parent / "run"
    model = tmp_path / "model.skops"
    write_artifact(str(model), artifact)
    port = _free_port()
    env = {
        **clean_environment(),
        "RUN_DIR": str(tmp_path),
        "MODEL_PATH": str(model),
        "SHM_DIR": str(shm_dir),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "WEB_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        ready = False
        while time.monotonic() < deadline and not ready:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError):
                ready = _get(port, "/readyz")[0] == 200
            time.sleep(0.2)
        assert ready, log.read_text()[-3000:]
        status, cache = _get(port, "/cache")
        assert status == 200 and cache["source"] == "replay" and cache["rows"] >= 336
        # The replay source keeps publishing: the served window moves on.
        later = wait_until(
            lambda: _moved_on(port, cache), timeout=30, what="a later window served by /cache"
        )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/predict", body=b"{}", headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        forecast = json.loads(resp.read())
        conn.close()
        assert resp.status == 200 and len(forecast["predictions"]) == 1
        assert forecast["generation"] >= later["generation"]
        children = psutil.Process(proc.pid).children(recursive=True)
        assert len(children) >= 4  # daemon, gunicorn master and its two workers
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0, log.read_text()[-3000:]
        _gone, alive = psutil.wait_procs(children, timeout=5)
        assert not alive
        text = log.read_text()
        assert "gunicorn exited with 0" in text and "cache_daemon exited with 0" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_tree(parent)
