"""The package's exceptions: every message says what is wrong and, for configuration, which
variable or option to change."""

from __future__ import annotations


class LoadTestError(Exception):
    """Base class of every error raised by :mod:`locustfiles`."""


class ConfigError(LoadTestError, ValueError):
    """An environment variable or command-line option has an unusable value."""


class PayloadError(LoadTestError, ValueError):
    """A generated payload would break its own contract; it is raised, never sent."""


class SeriesError(LoadTestError, ValueError):
    """The series for ``real`` payloads cannot be read or is not a usable series."""


class PreflightError(LoadTestError, RuntimeError):
    """The service refused what the run would send, or is not there: no load is applied."""
