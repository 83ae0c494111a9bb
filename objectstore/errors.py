"""The one error of the object store client."""

from __future__ import annotations

__all__ = ["StoreError"]


class StoreError(OSError):
    """The object store failed or refused a request (network, credentials, missing object).

    ``missing`` is True when the bucket or key does not exist.
    """

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
