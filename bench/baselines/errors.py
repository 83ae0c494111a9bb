"""Errors of the baselines; :class:`BaselineError` is the base of all of them."""

from __future__ import annotations

from contract.errors import ConfigError

__all__ = ["BaselineConfigError", "BaselineError", "BaselineUnavailableError"]


class BaselineError(Exception):
    """Base class of every error raised by ``bench.baselines``."""


class BaselineConfigError(BaselineError, ConfigError):
    """An environment variable of a baseline is missing or malformed (the message names it)."""


class BaselineUnavailableError(BaselineError, RuntimeError):
    """A baseline cannot run on this machine (e.g. ``redis-server`` is not installed); the
    message says how to get it."""
