"""Schema metadata keys the protocol reserves for itself."""

from __future__ import annotations

RESERVED_PREFIX = "shm."
GENERATION_KEY = "shm.generation"
PUBLISHED_AT_KEY = "shm.published_at_ns"
