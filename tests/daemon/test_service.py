"""The whole daemon on the replay source: start-up, model pick-up, restart, signals."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import numpy as np

from cache_daemon.config import DaemonConfig
from cache_daemon.status import read_status
from shm import Reader
from tests.daemon._helpers import running, spawn, wait_for

STEP = 1800 * 10**9


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
        wait_for(reader, lambda s: s.table.num_rows > 2100)
    stopped = reader.current()
    assert stopped is not None
    rows_at_stop = stopped.table.num_rows
    before = stopped.table.column("time").cast("int64").to_numpy().copy()
    with running(config):
        later = wait_for(reader, lambda s: s.table.num_rows > rows_at_stop + 50)
    times = later.table.column("time").cast("int64").to_numpy()
    assert (np.diff(times) == STEP).all()  # no duplicate, no gap across the restart
    # The restarted daemon went on from the window it left (both far below WINDOW_ROWS), not
    # from a fresh history: everything published before the stop is still there, unchanged.
    assert rows_at_stop < 4000
    np.testing.assert_array_equal(times[:rows_at_stop], before)


def test_sigterm_publishes_and_exits_zero_second_daemon_refused(
    shm_dir: Path, tmp_path: Path
) -> None:
    env = {"SHM_DIR": str(shm_dir), "REPLAY_RATE": "50"}
    proc = spawn(env, tmp_path / "first.log")
    started = [proc]
    try:
        reader = Reader(shm_dir)
        deadline = time.monotonic() + 15
        while reader.current() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reader.current() is not None
        other = spawn(env, tmp_path / "second.log")
        started.append(other)
        assert other.wait(15) == 2
        assert b"another publisher holds" in (tmp_path / "second.log").read_bytes()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, (tmp_path / "first.log").read_text()[-2000:]
        status = read_status(shm_dir)
        assert status is not None and status["state"] == "stopping"
    finally:
        for started_proc in started:  # a timed-out wait leaves no daemon behind
            if started_proc.poll() is None:
                started_proc.kill()
                started_proc.wait()


def test_a_repeated_sigterm_still_stops_cleanly(shm_dir: Path, tmp_path: Path) -> None:
    """SIGTERM may reach the daemon more than once (it did under tini in the image): every
    repeat during the stop is ignored, and the stop finishes with exit 0 and "stopped"."""
    log = tmp_path / "daemon.log"
    proc = spawn({"SHM_DIR": str(shm_dir), "REPLAY_RATE": "50"}, log)
    try:
        reader = Reader(shm_dir)
        wait_for(reader, lambda s: s.table.num_rows > 0, what="a first publication")
        sent = 0
        while proc.poll() is None and sent < 2000:
            proc.send_signal(signal.SIGTERM)
            sent += 1
            time.sleep(0.001)
        assert proc.wait(15) == 0, log.read_text()[-2000:]
        assert sent >= 2  # the process was still there for at least one repeat
        assert '"message": "stopped"' in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_bad_configuration_exits_2_naming_the_variable(shm_dir: Path, tmp_path: Path) -> None:
    proc = spawn({"SHM_DIR": str(shm_dir), "WINDOW_ROWS": "many"}, tmp_path / "log")
    assert proc.wait(15) == 2
    assert b"WINDOW_ROWS" in (tmp_path / "log").read_bytes()
