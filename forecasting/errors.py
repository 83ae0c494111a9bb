"""Exceptions raised by the forecasting package (one base class)."""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ArtifactIntegrityError",
    "ForecastingError",
    "IrregularSeriesError",
    "TooFewRowsError",
]


class ForecastingError(Exception):
    """Base class of every error raised by :mod:`forecasting`."""


class ArtifactError(ForecastingError, ValueError):
    """A model artifact cannot be read, is malformed, or holds untrusted types."""


class ArtifactIntegrityError(ArtifactError):
    """The artifact's SHA-256 digest differs from the expected one."""


class TooFewRowsError(ForecastingError, ValueError):
    """The series is shorter than the model's lag window.

    ``needed`` and ``got`` carry the row counts so callers can build a precise message.
    """

    def __init__(self, needed: int, got: int) -> None:
        super().__init__(f"the model needs at least {needed} rows of history, got {got}")
        self.needed = needed
        self.got = got


class IrregularSeriesError(ForecastingError, ValueError):
    """Timestamps are not on the model's regular grid (or gaps exceed the policy).

    ``position`` is the index (after sorting) of the first offending timestamp.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position
