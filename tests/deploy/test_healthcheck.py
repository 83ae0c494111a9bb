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

from contract.status import DaemonStatus
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


def _fake_proc(root: Path, pid: int, *, boot_s: int, start_ticks: int) -> Path:
    """A /proc with ``pid``'s stat (its command holding a ") " to parse around) and btime."""
    (root / "self").mkdir(parents=True)
    (root / "stat").write_text(f"cpu  1 2 3\nbtime {boot_s}\nprocesses 9\n")
    fields = ["S", *["0"] * 18, str(start_ticks), "0"]  # fields 3.. ; 22 is starttime
    (root / str(pid)).mkdir()
    (root / str(pid) / "stat").write_text(f"{pid} (python ) x) {' '.join(fields)}\n")
    return root


def test_a_status_left_by_an_earlier_run_of_the_container_is_not_healthy(tmp_path: Path) -> None:
    """After a restart the volume still holds the killed daemon's status, heartbeat fresh:
    until the new process writes its own, the pid it names is missing or younger than it."""
    tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    boot_s, started_ns = 1_000, 1_050 * 1_000_000_000  # the writer stamped its start at 1,050 s
    written = DaemonStatus(pid=7, started_ns=started_ns, heartbeat_ns=started_ns)
    # The writer, created at 1,040 s (before its stamp): healthy.
    proc = _fake_proc(tmp_path / "a", 7, boot_s=boot_s, start_ticks=40 * 1_000_000_000 // tick)
    assert hc._writer_gone(written, proc) is None
    # Within the 1 s the boot time's rounding allows: still healthy.
    proc = _fake_proc(tmp_path / "b", 7, boot_s=boot_s, start_ticks=509 * 100_000_000 // tick)
    assert hc._writer_gone(written, proc) is None
    # Pid 7 is a process created at 1,060 s, after the stamp: a new daemon, still starting.
    proc = _fake_proc(tmp_path / "c", 7, boot_s=boot_s, start_ticks=60 * 1_000_000_000 // tick)
    problem = hc._writer_gone(written, proc)
    assert problem is not None and "earlier daemon" in problem and "pid 7" in problem
    # No process 7 at all.
    problem = hc._writer_gone(DaemonStatus(pid=8, started_ns=started_ns), proc)
    assert problem is not None and "pid 8" in problem and "not running" in problem
    # Nothing to check with: no pid or start in the status, or no /proc.
    assert hc._writer_gone(DaemonStatus(pid=7), proc) is None
    assert hc._writer_gone(written, tmp_path / "no-proc") is None


def test_the_running_process_passes_and_a_start_before_it_does_not(tmp_path: Path) -> None:
    """Against the real /proc: this process wrote a status now (healthy); a status whose
    start is an hour before this process was created was written by another one."""
    env = {"SHM_DIR": str(tmp_path), "MAX_DATA_AGE_MS": "10000"}
    now = time.time_ns()
    _status(tmp_path, pid=os.getpid(), started_ns=now)
    assert hc.check_daemon(env) is None
    _status(tmp_path, pid=os.getpid(), started_ns=now - 3_600 * 1_000_000_000)
    problem = hc.check_daemon(env)
    assert problem is not None and "earlier daemon" in problem
    assert hc.main(["daemon"], env) == 1
