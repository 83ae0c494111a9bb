"""A bounded memo of per-series forecasts: each computed on the first request for its series,
kept for the next ones, the least recently used dropped beyond ``FORECAST_MEMO_SERIES``.

One :class:`ForecastMemo` per worker process (:class:`webapp.worker_state.WorkerState`).
Keys name everything a forecast depends on: the model file and the series' data version
(:attr:`webapp.series_catalog.SeriesRows.version`) and id, so a hit is always the forecast of
those exact rows by that model, and a generation that leaves a series' version unchanged
reuses its forecast. Entries hold only encoded forecasts (or the reason there is none), never
a reference into a generation's mapping, so a bounded memo bounds memory.

An ``OrderedDict`` under a lock is the whole LRU: a hit moves its key to the end, an insert
beyond the bound drops the first. Computing happens outside the lock, so a slow forecast
never holds up hits for other series; two threads missing the same key at once both compute
it (the function is pure) and the second result replaces the first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ForecastMemo"]

V = TypeVar("V")


class ForecastMemo(Generic[V]):
    """An LRU of at most ``max_entries`` values by key. Thread-safe."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value under ``key``, computed by ``compute()`` (outside the lock) when absent."""
        with self._lock:
            try:
                value = self._entries[key]
            except KeyError:
                self.misses += 1
            else:
                self._entries.move_to_end(key)
                self.hits += 1
                return value
        value = compute()
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def after_fork(self) -> None:
        """Replace the lock made in a preloading master with one of this process."""
        self._lock = threading.Lock()
