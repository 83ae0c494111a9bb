"""The daemon's CPU priority: its nice value, set once at start (``DAEMON_NICE``).

Where the daemon shares cores with the web workers (one host, one container, the benchmarks),
a publication that waits for a core behind busy workers reaches them later. The daemon uses
a few percent of a core, so a lower nice value (a larger share when it wants one) costs the
workers little and lets it run as soon as records arrive (docs/daemon.md, "Freshness").

Linux keeps the nice value per thread and a new thread inherits its creator's, so it is set
from the main thread before any other starts. Lowering it needs ``CAP_SYS_NICE`` (root, or the
capability granted to the container); without it the inherited value stays. Across
containers (the daemon as a pod's sidecar) nice values do not compare: each container's
cgroup gets its share of the CPU from its requests.
"""

from __future__ import annotations

import os

__all__ = ["set_nice"]


def set_nice(value: int) -> tuple[int, str | None]:
    """Give the calling thread, and every thread it starts afterwards, the nice value
    ``value``. Returns the value in force and, when that is not ``value``, why."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if current == value:
        return current, None
    try:
        os.setpriority(os.PRIO_PROCESS, 0, value)
    except PermissionError:
        return current, f"nice {value} needs CAP_SYS_NICE; keeping {current}"
    return os.getpriority(os.PRIO_PROCESS, 0), None
