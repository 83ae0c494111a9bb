"""Waiting on a condition with a deadline, the one way tests synchronise with other threads
and processes (a fixed sleep either wastes time or, on a busy machine, is too short)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval: float = 0.02
) -> T:
    """The first truthy value of ``probe()`` within ``timeout`` seconds; AssertionError
    naming ``what`` when there is none. ``probe`` runs at least once, and once more after
    the deadline, so a slow first call cannot make it fail unseen."""
    deadline = time.monotonic() + timeout
    while True:
        late = time.monotonic() > deadline
        value = probe()
        if value:
            return value
        if late:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(interval)
