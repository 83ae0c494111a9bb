"""deploy/healthcheck.py: the probe both containers use (exit 0 healthy, 1 not, 2 misuse)."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from cache_daemon.status import StatusFile
from contract.status import DaemonStatus, process_start_ticks
from tests.deploy._manifests import ROOT


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hc = _load()


def _status(directory: Path, **fields: object) -> None:
    body = {"pid": 1, "state": "live", "heartbeat_ns": time.time_ns(), **fields}
    (directory / "daemon-status.json").write_text(json.dumps(body))


def test_fresh_heartbeat_is_healthy_whatever_the_state(tmp_path: Path) -> None:
    env = {"SHM_DIR": str(tmp_path), "MAX_DATA_AGE_MS": "10000"}
    for state in ("starting", "restoring", "live", "degraded"):
        _status(tmp_path, state=state)
        assert hc.check_daemon(env) is None
    assert hc.main(["daemon"], env) == 0


def test_stale_missing_or_corrupt_status_is_unhealthy(tmp_path: Path) -> None:
    env = {"SHM_DIR": str(tmp_path), "MAX_DATA_AGE_MS": "2000"}
    assert "does not exist" in hc.check_daemon(env)
    assert hc.main(["daemon"], env) == 1
    beat = time.time_ns()
    _status(tmp_path, heartbeat_ns=beat)
    assert hc.check_daemon(env, now_ns=beat + 1_999_000_000) is None
    problem = hc.check_daemon(env, now_ns=beat + 2_001_000_000)
    assert problem is not None and "2001 ms old" in problem
    (tmp_path / "daemon-status.json").write_text('{"state": "live"')
    assert "unreadable" in hc.check_daemon(env)
    _status(tmp_path, heartbeat_ns="soon")
    assert "unreadable" in hc.check_daemon(env)


def test_bad_bound_is_reported_not_raised(tmp_path: Path) -> None:
    _status(tmp_path)
    problem = hc.check_daemon({"SHM_DIR": str(tmp_path), "MAX_DATA_AGE_MS": "ten"})
    assert problem is not None and "MAX_DATA_AGE_MS" in problem


class _Handler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_web_check_asks_healthz_on_port(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {"PORT": str(server.server_address[1])}
    assert hc.main(["web"], env) == 0
    monkeypatch.setattr(_Handler, "status", 503)
    assert "answered 503" in hc.check_web(env)
    server.shutdown()
    server.server_close()
    assert "failed" in hc.check_web(env)


def test_auto_mode_picks_the_daemon_by_pid1_command_line(tmp_path: Path) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"tini\0--\0python\0-m\0cache_daemon\0")
    assert hc.role_of_pid1(cmdline) == "daemon"
    cmdline.write_bytes(b"tini\0--\0gunicorn\0-c\0gunicorn.conf.py\0webapp.wsgi:app\0")
    assert hc.role_of_pid1(cmdline) == "web"
    assert hc.role_of_pid1(tmp_path / "absent") == "web"
    assert hc.main(["nonsense"], {}) == 2


def _fake_proc(root: Path, pid: int, start_ticks: int) -> Path:
    """A /proc holding ``pid``'s stat (its command holding a ") " to parse around)."""
    (root / "self").mkdir(parents=True)
    fields = ["S", *["0"] * 18, str(start_ticks), "0"]  # fields 3.. ; 22 is starttime
    (root / str(pid)).mkdir()
    (root / str(pid) / "stat").write_text(f"{pid} (python ) x) {' '.join(fields)}\n")
    return root


def test_a_status_left_by_an_earlier_run_of_the_container_is_not_healthy(tmp_path: Path) -> None:
    """After a restart the volume still holds the killed daemon's status, heartbeat fresh:
    until the new process writes its own, the pid it names is missing or another process."""
    written = DaemonStatus(pid=7, start_ticks=4_000, heartbeat_ns=time.time_ns())
    assert hc._writer_gone(written, _fake_proc(tmp_path / "a", 7, 4_000)) is None
    # Pid 7 is a process that started later: a new daemon, still starting.
    problem = hc._writer_gone(written, _fake_proc(tmp_path / "b", 7, 6_000))
    assert problem is not None and "earlier daemon" in problem and "pid 7" in problem
    # No process 7 at all.
    problem = hc._writer_gone(written, _fake_proc(tmp_path / "c", 8, 4_000))
    assert problem is not None and "pid 7" in problem and "not running" in problem
    # Nothing to check with: no pid or start in the status (an older daemon), or no /proc.
    assert hc._writer_gone(DaemonStatus(pid=7), tmp_path / "b") is None
    assert hc._writer_gone(written, tmp_path / "no-proc") is None


def test_the_running_process_passes_and_another_start_does_not(tmp_path: Path) -> None:
    """Against the real /proc: a status naming this process and its start is healthy; one
    naming this pid with another start was written by another process."""
    env = {"SHM_DIR": str(tmp_path), "MAX_DATA_AGE_MS": "10000"}
    ticks = process_start_ticks(os.getpid())
    assert ticks is not None
    _status(tmp_path, pid=os.getpid(), start_ticks=ticks)
    assert hc.check_daemon(env) is None
    _status(tmp_path, pid=os.getpid(), start_ticks=ticks - 1)
    problem = hc.check_daemon(env)
    assert problem is not None and "earlier daemon" in problem
    assert hc.main(["daemon"], env) == 1


def test_the_daemon_records_its_own_start() -> None:
    """What the daemon writes is what the probe reads for its pid."""
    status = StatusFile(Path("/nonexistent"))
    assert status.start_ticks is not None
    assert status.start_ticks == process_start_ticks(os.getpid())
