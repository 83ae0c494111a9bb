"""The whole daemon on the replay source: start-up, model pick-up, restart, signals."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cache_daemon.config import DaemonConfig
from cache_daemon.service import run_service
from cache_daemon.status import read_status
from shm import Reader, Snapshot

STEP = 1800 * 10**9
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(config: DaemonConfig) -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=run_service, args=(config, stop))
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive()


def wait_for(reader: Reader, pred: Callable[[Snapshot], bool], timeout: float = 10) -> Snapshot:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = reader.current()
        if snap is not None and pred(snap):
            return snap
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def artifact(path: Path, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(sha + "\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    return sha


def test_replay_publishes_history_then_streams_with_model(shm_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.skops"
    sha1 = artifact(model, b"first model")
    config = DaemonConfig.from_env(
        {
            "SHM_DIR": str(shm_dir),
            "REPLAY_RATE": "200",
            "PUBLISH_INTERVAL_MS": "20",
            "MODEL_PATH": str(model),
            "MODEL_POLL_INTERVAL_S": "0.1",
        }
    )
    reader = Reader(shm_dir)
    with running(config):
        snap = wait_for(reader, lambda s: s.table.num_rows > 2016)
        md = snap.metadata
        assert md["source"] == "replay" and md["state"] == "live"
        assert md["model_sha256"] == sha1
        assert (shm_dir / md["model_file"]).read_bytes() == b"first model"
        sha2 = artifact(model, b"second model")
        snap = wait_for(reader, lambda s: s.metadata["model_sha256"] == sha2)
        assert (shm_dir / snap.metadata["model_file"]).read_bytes() == b"second model"
        status = read_status(shm_dir)
        assert status is not None and status["state"] == "live" and status["source"] == "replay"


def test_restart_resumes_without_duplicates_or_gaps(shm_dir: Path) -> None:
    env = {"SHM_DIR": str(shm_dir), "REPLAY_RATE": "400", "PUBLISH_INTERVAL_MS": "10"}
    config = DaemonConfig.from_env(env)
    reader = Reader(shm_dir)
    with running(config):
        first = wait_for(reader, lambda s: s.table.num_rows > 2100)
    stopped = reader.current()
    assert stopped is not None
    rows_at_stop = stopped.table.num_rows
    with running(config):
        later = wait_for(reader, lambda s: s.table.num_rows > rows_at_stop + 50)
    times = later.table.column("time").cast("int64").to_numpy()
    assert (np.diff(times) == STEP).all()  # no duplicate, no gap across the restart
    assert later.generation > stopped.generation > first.generation - 1


def run_module(env: dict[str, str], *, timeout: float = 20) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cache_daemon"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_sigterm_publishes_and_exits_zero_second_daemon_refused(shm_dir: Path) -> None:
    env = {"SHM_DIR": str(shm_dir), "REPLAY_RATE": "50"}
    proc = run_module(env)
    try:
        reader = Reader(shm_dir)
        deadline = time.monotonic() + 15
        while reader.current() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.current() is not None
        other = run_module(env)
        _, err = other.communicate(timeout=15)
        assert other.returncode == 2
        assert b"another publisher holds" in err
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()[-2000:]
        status = read_status(shm_dir)
        assert status is not None and status["state"] == "stopping"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_configuration_exits_2_naming_the_variable(shm_dir: Path) -> None:
    proc = run_module({"SHM_DIR": str(shm_dir), "WINDOW_ROWS": "many"})
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert b"WINDOW_ROWS" in err
