"""Exceptions of the load-testing package (one base class).

Every message names what is wrong and, for configuration, the variable or option to change.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FreshnessTimeoutError",
    "LoadTestError",
    "PayloadError",
    "PreflightError",
    "SeriesError",
]


class LoadTestError(Exception):
    """Base class of every error raised by :mod:`locustfiles`."""


class ConfigError(LoadTestError, ValueError):
    """An environment variable or command-line option has an unusable value."""


class PayloadError(LoadTestError, ValueError):
    """A generated payload would break its own contract (e.g. identical timestamps).

    Generators check their output before it is sent: a load test must never blame the
    server for a bug in its own request generator.
    """


class SeriesError(LoadTestError, ValueError):
    """The sample series for ``real`` payloads cannot be read or is not a usable series."""


class PreflightError(LoadTestError, RuntimeError):
    """The service refused what the run would send, or is not there: stop before loading it."""


class FreshnessTimeoutError(LoadTestError, TimeoutError):
    """An event produced to Kafka did not show in ``/cache`` within the ingest timeout."""
