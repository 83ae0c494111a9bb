"""Whether a process exists, for the web server's master and the local scripts alike
(standard library only)."""

from __future__ import annotations

import os

__all__ = ["pid_exists"]


def pid_exists(pid: object) -> bool:
    """Whether ``pid`` names a process that exists: an unreaped child still does, and so
    does a process of another user (signal 0 is refused, not unknown). Anything that is not
    a positive int names none."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
