"""``contract._process.pid_exists``: what the Gunicorn master's connection table and the
local scripts take for a live process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from contract._process import pid_exists


def test_a_running_process_exists_until_it_is_reaped() -> None:
    assert pid_exists(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
    assert pid_exists(child.pid)  # a zombie still holds its pid
    child.wait()
    assert not pid_exists(child.pid)


@pytest.mark.parametrize("pid", [None, 0, -1, "123", 1.0])
def test_anything_but_a_positive_int_names_no_process(pid: object) -> None:
    assert not pid_exists(pid)
