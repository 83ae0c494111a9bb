"""Errors of the baselines; :class:`BaselineError` is the base of all of them."""

from __future__ import annotations

__all__ = ["BaselineConfigError", "BaselineError", "BaselineUnavailableError"]


class BaselineError(Exception):
    """Base class of every error raised by ``bench.baselines``."""


class BaselineConfigError(BaselineError, ValueError):
    """An environment variable of a baseline is missing or malformed (the message names it)."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


class BaselineUnavailableError(BaselineError, RuntimeError):
    """A baseline cannot run on this machine (e.g. ``redis-server`` is not installed); the
    message says how to get it."""
