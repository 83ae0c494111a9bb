"""``scripts._supervise``: how ``make run`` restarts the daemon, with real child processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from scripts._supervise import Backoff, DaemonSupervisor
from tests._wait import wait_until


def _spawner(*scripts: str):
    """A spawn function running the given Python snippets in turn (the last one repeats)."""
    runs: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        code = scripts[min(len(runs), len(scripts) - 1)]
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        runs.append(proc)
        return proc

    return spawn, runs


def _stop(runs: list[subprocess.Popen[bytes]]) -> None:
    for proc in runs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_backoff_doubles_to_its_cap_and_starts_over_after_a_long_run() -> None:
    backoff = Backoff(first_s=0.5, max_s=4.0, reset_after_s=60.0)
    assert [backoff.next_delay(1.0) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff.next_delay(61.0) == 0.5


def test_a_crash_is_logged_marked_in_the_status_file_and_restarted(tmp_path: Path) -> None:
    status = tmp_path / "daemon-status.json"
    status.write_text(json.dumps({"state": "live", "generation": 7, "heartbeat_ns": 1}))
    crash = (
        'import sys; sys.stderr.write(\'{"level": "error", "msg": "broker gone"}\\n\'); sys.exit(3)'
    )
    spawn, runs = _spawner(crash, "import time; time.sleep(60)")
    supervisor = DaemonSupervisor(spawn, tmp_path)
    try:
        wait_until(
            lambda: supervisor.poll() or supervisor.restarts == 1, timeout=20, what="restart"
        )
        assert supervisor.proc.poll() is None  # the second run is alive
        marked = json.loads(status.read_text())
        assert marked["state"] == "crashed" and marked["generation"] == 7
        assert marked["heartbeat_ns"] == 1  # the dead daemon's last beat: data ages from it
        assert marked["last_error"] == "cache_daemon exited with 3 (last log: broker gone)"
    finally:
        _stop(runs)


def test_a_refusal_at_the_first_start_is_not_retried(tmp_path: Path) -> None:
    refuse = "import sys; sys.stderr.write('SHM_DIR: not this directory\\n'); sys.exit(2)"
    spawn, runs = _spawner(refuse)
    supervisor = DaemonSupervisor(spawn, tmp_path)
    try:
        wait_until(lambda: supervisor.poll() or supervisor.refused, timeout=20, what="the refusal")
        time.sleep(1.0)  # longer than the first backoff: no second start
        supervisor.poll()
        assert len(runs) == 1
        assert (
            supervisor.refused
            == "cache_daemon exited with 2 (last log: SHM_DIR: not this directory)"
        )
        assert not (tmp_path / "daemon-status.json").exists()  # not its file to mark
    finally:
        _stop(runs)


def test_a_signal_without_a_name_is_still_reported(tmp_path: Path) -> None:
    spawn, runs = _spawner(
        "import os, signal; os.kill(os.getpid(), 40)", "import time; time.sleep(60)"
    )
    supervisor = DaemonSupervisor(spawn, tmp_path)
    try:
        wait_until(
            lambda: supervisor.poll() or supervisor.restarts == 1, timeout=20, what="restart"
        )
        marked = json.loads((tmp_path / "daemon-status.json").read_text())
        assert marked["last_error"].startswith("cache_daemon killed by ")
    finally:
        _stop(runs)
