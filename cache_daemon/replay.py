"""The embedded source: replays the bundled sample series as a stream, no Kafka needed.

The sample (regular steps) is turned into an endless sequence: event ``k`` is sample row
``k % n`` with its timestamp shifted by ``(k // n) * span``, where ``span`` is the sample's
length plus one step. So when the sample runs out the stream goes on seamlessly with the same
values on later dates (logged once per cycle); timestamps stay unique and regular. A series
on a calendar whose steps differ in length (business days, months, quarters, years, as
``pandas.infer_freq`` names it) goes on along that calendar instead: event ``k`` is ``k``
steps after the first time.

The first half of the sample is :meth:`ReplaySource.history`, published at once as the
bootstrap window; the rest streams at ``rate`` events per second. After a restart the stream
resumes right after the newest timestamp of the last generation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas._libs.tslibs.offsets import BaseOffset
from pandas.tseries.frequencies import to_offset

from cache_daemon.errors import SnapshotError
from cache_daemon.sources import Health, Record
from cache_daemon.window import Window

__all__ = ["ReplaySource"]

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BATCH = 2000


class ReplaySource:
    """A :class:`~cache_daemon.sources.Source` over a parquet file of ``time`` + ``columns``.

    ``clock`` and ``sleep`` are injectable for tests; the defaults are monotonic time.
    """

    kind = "replay"

    def __init__(
        self,
        path: Path,
        columns: Sequence[str],
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.columns = tuple(columns)
        self.rate = rate
        self._clock, self._sleep = clock, sleep
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise SnapshotError(f"cannot read the replay series {path}: {exc}") from None
        window = Window(self.columns, max_rows=max(table.num_rows, 1), max_duration_ns=None)
        window.load(table)
        if len(window) < 2:
            raise SnapshotError(f"the replay series {path} needs at least two rows")
        self._times = window.times()
        self._values = window.values()
        step = int(np.median(np.diff(self._times)))
        self._span = int(self._times[-1] - self._times[0]) + step
        self._calendar = _calendar(self._times)
        self._next = 0
        self._started_at = 0.0
        self._emitted = 0

    def history(self) -> pa.Table:
        """The first half of the sample: the window to publish before streaming starts."""
        half = len(self._times) // 2
        arrays = [pa.array(self._times[:half]).cast(pa.timestamp("ns", tz="UTC"))]
        arrays += [pa.array(self._values[:half, i]) for i in range(len(self.columns))]
        return pa.Table.from_arrays(arrays, names=["time", *self.columns])

    def start(self, offsets: Mapping[int, int] | None, *, resume_after_ns: int | None) -> None:
        """Begin after ``resume_after_ns`` (or at the start of the sample); offsets are unused."""
        del offsets
        self._next = 0 if resume_after_ns is None else self._index_after(resume_after_ns)
        self._started_at = self._clock()
        self._emitted = 0

    def _index_after(self, time_ns: int) -> int:
        n = len(self._times)
        if self._calendar is not None:
            first = pd.Timestamp(int(self._times[0]))
            if time_ns < first.value:
                return 0
            return len(pd.date_range(first, pd.Timestamp(time_ns), freq=self._calendar))
        cycle = max((time_ns - int(self._times[0])) // self._span, 0)
        inside = time_ns - cycle * self._span
        return int(cycle * n + np.searchsorted(self._times, inside, side="right"))

    def _event(self, k: int) -> tuple[int, bytes]:
        n = len(self._times)
        cycle, row = divmod(k, n)
        if row == 0 and cycle > 0:
            log.info(
                "replay sample exhausted; continuing with the same values shifted by %s",
                timedelta(microseconds=cycle * self._span // 1000),
                extra={"cycle": cycle},
            )
        if self._calendar is None:
            time_ns = int(self._times[row]) + cycle * self._span
        else:
            time_ns = (pd.Timestamp(int(self._times[0])) + k * self._calendar).value
        stamp = (_EPOCH + timedelta(microseconds=time_ns // 1000)).isoformat()
        body: dict[str, object] = {"time": stamp}
        body.update(zip(self.columns, self._values[row].tolist(), strict=True))
        return time_ns, json.dumps(body).encode()

    def poll(self, timeout_s: float) -> list[Record]:
        """Return the events due at ``rate`` since :meth:`start`, waiting up to ``timeout_s``."""
        due = int((self._clock() - self._started_at) * self.rate) - self._emitted
        if due <= 0:
            wait = (self._emitted + 1) / self.rate - (self._clock() - self._started_at)
            self._sleep(max(0.0, min(timeout_s, wait)))
            due = int((self._clock() - self._started_at) * self.rate) - self._emitted
        records = []
        for _ in range(min(max(due, 0), _MAX_BATCH)):
            _, value = self._event(self._next)
            records.append(Record(partition=0, offset=self._next, value=value))
            self._next += 1
            self._emitted += 1
        return records

    def positions(self) -> dict[int, int]:
        """Replay has no offsets to record (its position follows from the window's time)."""
        return {}

    def health(self) -> Health:
        """Always connected and caught up."""
        return Health(connected=True, caught_up=True)

    def dead_letter(self, record: Record, reason: str, detail: str) -> None:
        """Replay only emits valid records; a failure here is logged, there is no topic."""
        log.warning("replay record rejected", extra={"reason": reason, "detail": detail})

    def flush(self, timeout_s: float) -> bool:
        """Nothing to flush."""
        return True

    def close(self) -> None:
        """Nothing to release."""


def _calendar(times: npt.NDArray[np.int64]) -> BaseOffset | None:
    """The calendar offset of times whose steps differ in length, else None (equal steps
    shift by whole spans)."""
    steps = np.diff(times)
    if len(steps) < 2 or (steps == steps[0]).all():
        return None
    alias = pd.infer_freq(pd.DatetimeIndex(times.astype("datetime64[ns]")))
    return None if alias is None else to_offset(alias)
