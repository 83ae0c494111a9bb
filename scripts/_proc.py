"""Server processes of the local stack: spawn, identify by pid, stop.

A pid alone can be reused by the system after the server died, so every check also requires the
process's command line to contain a marker (the server's own config path, unique per stack
directory); a pid that fails the check is treated as gone and is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from contract._process import pid_exists

__all__ = ["is_running", "spawn", "stop"]

# Run as `python -c _TIE <parent pid> <argv...>`: asks Linux to send SIGTERM to the server when
# the process that started it dies (even by SIGKILL), then becomes the server. Used by the test
# fixtures so a killed test run leaves no broker behind; the CLI leaves servers running on purpose.
# A trampoline rather than preexec_fn because the parent has threads (kafka-python's I/O thread).
# Linux sends the signal when the *thread* that forked the child ends, so tied servers are
# always forked from the main thread or, for calls from other threads, from one spawner thread
# that lives as long as the process.
_TIE = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(0)
os.execvp(sys.argv[2], sys.argv[2:])
"""


_spawner: ThreadPoolExecutor | None = None
_spawner_lock = threading.Lock()


def spawn(
    cmd: list[str], *, log_path: Path, cwd: Path, tie_to_parent: bool
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with stdout and stderr appended to ``log_path``.

    With ``tie_to_parent`` (Linux only; ignored elsewhere) the server gets SIGTERM when this
    process dies, whichever thread calls.
    """
    if not (tie_to_parent and sys.platform.startswith("linux")):
        return _popen(cmd, log_path=log_path, cwd=cwd)
    tied = [sys.executable, "-c", _TIE, str(os.getpid()), *cmd]
    if threading.current_thread() is threading.main_thread():
        return _popen(tied, log_path=log_path, cwd=cwd)
    global _spawner  # noqa: PLW0603 - one long-lived thread per process, created on demand
    with _spawner_lock:
        if _spawner is None:
            _spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stack-spawner")
    return _spawner.submit(_popen, tied, log_path=log_path, cwd=cwd).result()


def _popen(cmd: list[str], *, log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(  # noqa: S603 - argv list, no shell
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def is_running(pid: int, marker: str) -> bool:
    """True when ``pid`` is alive and its command line contains ``marker``.

    Where ``/proc`` is missing (macOS) only liveness is checked.
    """
    if pid <= 0:
        return False
    if Path("/proc/self/cmdline").exists():
        return _proc_matches(pid, marker)
    return pid_exists(pid)


def _proc_matches(pid: int, marker: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie (state Z) has exited; it only waits for its parent to reap it.
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return marker in raw.replace(b"\0", b" ").decode(errors="replace")


def stop(
    pid: int,
    marker: str,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    grace_s: float = 30.0,
    hard: bool = False,
) -> bool:
    """Stop the server ``pid`` (SIGTERM, then SIGKILL after ``grace_s``; SIGKILL at once with
    ``hard``) and wait until it is gone. Does nothing when ``pid`` is not that server.

    Returns True when the server exited by itself after SIGTERM (so it finished its exit
    work, such as writing a class archive). ``proc`` is the ``Popen`` when this process
    started the server: it is reaped, so no zombie and no ``ResourceWarning`` stay behind.
    """
    if not is_running(pid, marker):
        _reap(proc)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return not hard
        if not is_running(pid, marker):
            _reap(proc)
            return not hard
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if proc is not None:
        proc.wait(timeout=10)
        return False
    while is_running(pid, marker) and time.monotonic() < deadline + 10:
        time.sleep(0.05)
    return False


def _reap(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
