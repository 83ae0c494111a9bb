"""A step run in a forked child that is expected to die of SIGKILL mid-way."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable


def run_until_killed(step: Callable[[], None]) -> None:
    """Run ``step`` in a forked child and check that it died of SIGKILL (it arranges its own
    kill at the instant under test); a child that returns or raises exits 1 and fails here."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            step()
        finally:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
