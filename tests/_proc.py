"""Child processes of the tests, started and stopped one way.

:func:`start` runs a command from the project root with exactly the environment given, its
output in a log file (so a chatty child never blocks on a full pipe); :func:`stop` ends it by
pid: a signal, a grace period, then SIGKILL (to its whole process group when it leads one).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["ROOT", "start", "stop"]

ROOT = Path(__file__).resolve().parents[1]


def start(
    argv: Sequence[str], env: Mapping[str, str], log: Path, *, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """``argv`` from the project root; stdout and stderr into ``log`` (truncated first).
    ``new_session``: the child leads a process group of its own (its children included)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, *, grace: float = 30.0) -> None:
    """Send ``sig`` unless ``proc`` has ended; after ``grace`` s SIGKILL it (its whole process
    group when it leads one) and reap it."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
