"""DAEMON_NICE: the nice value the daemon takes at start, inherited by its threads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cache_daemon import priority
from cache_daemon.config import DaemonConfig
from cache_daemon.errors import ConfigError

# Run in a child: a nice value, once raised, cannot be lowered again without privileges.
_CHILD = """
import os, threading
from cache_daemon.priority import set_nice
target = min(os.getpriority(os.PRIO_PROCESS, 0) + 3, 19)
print(target, *set_nice(target))
seen = []
thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
thread.start()
thread.join()
print(seen[0])
"""


def test_the_default_asks_for_a_higher_priority_than_the_workers() -> None:
    assert DaemonConfig.from_env({}).nice == -5
    assert DaemonConfig.from_env({"DAEMON_NICE": "0"}).nice == 0


@pytest.mark.parametrize("value", ["-21", "20", "high"])
def test_out_of_range_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="DAEMON_NICE"):
        DaemonConfig.from_env({"DAEMON_NICE": value})


def test_the_value_is_set_and_threads_started_afterwards_inherit_it() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    target, applied, reason, thread = int(out[0]), int(out[1]), out[2], int(out[3])
    assert applied == target and reason == "None"
    assert thread == target


def test_without_the_privilege_the_inherited_value_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(which: int, who: int, value: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    current = os.getpriority(os.PRIO_PROCESS, 0)
    applied, reason = priority.set_nice(current - 1)
    assert applied == current
    assert reason is not None and "CAP_SYS_NICE" in reason


def test_the_current_value_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(which: int, who: int, value: int) -> None:
        raise AssertionError("setpriority called")

    monkeypatch.setattr(os, "setpriority", never)
    current = os.getpriority(os.PRIO_PROCESS, 0)
    assert priority.set_nice(current) == (current, None)
