"""Schema metadata keys the protocol reserves for itself, and the publisher's epoch."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

RESERVED_PREFIX = "shm."
GENERATION_KEY = "shm.generation"
PUBLISHED_AT_KEY = "shm.published_at_ns"
EPOCH_KEY = "shm.epoch"
# Manifests and segment files (see shm._manifest).
SEGMENTS_KEY = "shm.segments"
SEGMENT_KEY = "shm.segment"
SCHEMA_KEY = "shm.schema"
SERIES_SET_KEY = "shm.series_set"
INDEX_KEY = "shm.index"

# Generations and times are stored as u64 in the hint and as datetime64[ns] by readers: both
# stay below 2**63 so that no reader overflows on a value the protocol accepted.
MAX_VALUE = 2**63 - 1

_EPOCH_RE = re.compile(r"\A([0-9]{1,19})-([0-9a-f]{16})\Z")
_DIGITS_RE = re.compile(r"\A[0-9]{1,19}\Z")


@dataclass(frozen=True, order=True, slots=True)
class Epoch:
    """One run of a publisher: its start time and a random token, ordered by start time.

    Every generation records the epoch that wrote it (``shm.epoch``) and the hint records the
    epoch of the publisher holding the lock, so a reader can tell a file of the live publisher
    from a leftover of an earlier run or a file nobody announced.
    """

    start_ns: int
    token: int

    @classmethod
    def new(cls) -> Epoch:
        """A fresh epoch: now, and 64 random bits (never 0, which marks "no epoch")."""
        return cls(time.time_ns(), secrets.randbits(64) | 1)

    @classmethod
    def parse(cls, text: str) -> Epoch:
        """Inverse of ``str()``; ValueError for anything else."""
        match = _EPOCH_RE.match(text)
        if match is None:
            raise ValueError(f"epoch {text[:60]!r} is not <start ns>-<16 hex digits>")
        epoch = cls(int(match.group(1)), int(match.group(2), 16))
        if not epoch.valid():
            raise ValueError(f"epoch {text!r} is out of range")
        return epoch

    def valid(self) -> bool:
        """True for an epoch a publisher can have made (both parts in range, token not 0)."""
        return 0 < self.start_ns <= MAX_VALUE and 0 < self.token < 2**64

    def __str__(self) -> str:
        return f"{self.start_ns}-{self.token:016x}"


def parse_count(text: str, what: str) -> int:
    """A non-negative decimal below 2**63, or ValueError naming ``what``."""
    if not _DIGITS_RE.match(text) or int(text) > MAX_VALUE:
        raise ValueError(f"{what} {text[:40]!r} is not a decimal number below 2**63")
    return int(text)
