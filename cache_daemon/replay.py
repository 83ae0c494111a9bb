"""The embedded source: replays the bundled sample series as a stream, no Kafka needed.

The sample (regular steps) is turned into an endless sequence: event ``k`` is sample row
``k % n`` with its timestamp shifted by ``(k // n) * span``, where ``span`` is the sample's
length plus one step. So when the sample runs out the stream goes on seamlessly with the same
values on later dates (logged once per cycle); timestamps stay unique and regular. A series
on a calendar whose steps differ in length (business days, months, quarters, years, as
pandas infers it) goes on along that calendar instead: event ``k`` is ``k``
steps after the first time.

The first half of the sample is :meth:`ReplaySource.history`, published at once as the
bootstrap window; the rest streams at ``rate`` events per second. After a restart the stream
resumes right after the newest timestamp of the last generation. A file with a series-id
column (``make run DATA=...``) replays every series: the first half of each as the window,
then one event of each series in turn, keyed by its id.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandas._libs.tslibs.offsets import BaseOffset
from pandas.errors import OutOfBoundsDatetime

from cache_daemon.errors import SnapshotError
from cache_daemon.sources import Health, Record
from cache_daemon.window import Window
from contract.series import SERIES_ID_COLUMN

__all__ = ["ReplaySource"]

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_BATCH = 2000
_MAX_NS = int(pd.Timestamp.max.value)  # the last time a nanosecond timestamp holds
# The stream ends this many steps before the last nanosecond time, so that the times of a
# forecast after its newest row (any frequency's horizon is shorter) stay representable and
# the service stays ready on what was replayed.
_FORECAST_ROOM = 100


@dataclass(frozen=True, slots=True)
class _Cycle:
    """One replayed series made endless: step ``k`` is row ``k % n`` (see the module
    docstring for the times)."""

    series_id: str | None
    times: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    span: int
    calendar: BaseOffset | None

    @classmethod
    def of(cls, series_id: str | None, table: pa.Table, columns: Sequence[str]) -> _Cycle:
        window = Window(columns, max_rows=max(table.num_rows, 1), max_duration_ns=None)
        window.load(table)
        if len(window) < 2:
            which = "" if series_id is None else f" (series {series_id!r})"
            raise SnapshotError(f"the replay series needs at least two rows{which}")
        times = window.times()
        step = int(np.median(np.diff(times)))
        span = int(times[-1]) - int(times[0]) + step  # Python ints: 300 years overflow int64
        return cls(series_id, times, window.values(), span, _calendar(times))

    def time_of(self, k: int) -> int | None:
        """The time of step ``k``, or None past the last nanosecond time (2262-04-11)."""
        if self.calendar is None:
            cycle, row = divmod(k, len(self.times))
            time_ns = int(self.times[row]) + cycle * self.span
            return time_ns if time_ns <= _MAX_NS else None
        try:
            return int((pd.Timestamp(int(self.times[0])) + k * self.calendar).value)
        except (OutOfBoundsDatetime, OverflowError):
            return None

    def index_after(self, time_ns: int) -> int:
        """The first step after ``time_ns``."""
        n = len(self.times)
        if self.calendar is not None:
            first = pd.Timestamp(int(self.times[0]))
            if time_ns < first.value:
                return 0
            return len(pd.date_range(first, pd.Timestamp(time_ns), freq=self.calendar))
        cycle = max((time_ns - int(self.times[0])) // self.span, 0)
        inside = time_ns - cycle * self.span
        return int(cycle * n + np.searchsorted(self.times, inside, side="right"))


class ReplaySource:
    """A :class:`~cache_daemon.sources.Source` over a parquet file of ``time`` + ``columns``,
    and optionally a series-id column (:data:`contract.series.SERIES_ID_COLUMN`): then every
    series is replayed, in turn, each record keyed by its series id.

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
        self._cycles = _cycles(table, self.columns)
        self._first = [0] * len(self._cycles)
        self._next = 0
        self._started_at = 0.0
        self._emitted = 0
        self._ended = False

    def history(self) -> pa.Table:
        """The first half of each series: the window to publish before streaming starts."""
        parts = []
        for cycle in self._cycles:
            half = len(cycle.times) // 2
            arrays: list[Any] = [pa.array(cycle.times[:half]).cast(pa.timestamp("ns", tz="UTC"))]
            arrays += [pa.array(cycle.values[:half, i]) for i in range(len(self.columns))]
            names = ["time", *self.columns]
            if cycle.series_id is not None:
                arrays.append(pa.array([cycle.series_id] * half, type=pa.string()))
                names.append(SERIES_ID_COLUMN)
            parts.append(pa.Table.from_arrays(arrays, names=names))
        return pa.concat_tables(parts)

    def start(self, offsets: Mapping[int, int] | None, *, resume_after_ns: int | None) -> None:
        """Begin after ``resume_after_ns`` (or at the start of each series); offsets are
        unused."""
        del offsets
        self._first = [
            0 if resume_after_ns is None else cycle.index_after(resume_after_ns)
            for cycle in self._cycles
        ]
        self._next = self._first[0] * len(self._cycles)
        self._started_at = self._clock()
        self._emitted = 0

    def _event(self, k: int) -> tuple[int, bytes, bytes | None] | None:
        """Event ``k`` since :meth:`start`: series ``k % S`` in turn, each at its next step
        (None past the last nanosecond time)."""
        step, which = divmod(k, len(self._cycles))
        cycle = self._cycles[which]
        index = self._first[which] + step
        round_, row = divmod(index, len(cycle.times))
        if row == 0 and round_ > 0 and which == 0:
            log.info(
                "replay sample exhausted; continuing with the same values on later dates",
                extra={"cycle": round_},
            )
        time_ns = cycle.time_of(index)
        if time_ns is None or cycle.time_of(index + _FORECAST_ROOM) is None:
            return None
        stamp = (_EPOCH + timedelta(microseconds=time_ns // 1000)).isoformat()
        body: dict[str, object] = {"time": stamp}
        body.update(zip(self.columns, cycle.values[row].tolist(), strict=True))
        key = None if cycle.series_id is None else cycle.series_id.encode()
        return time_ns, json.dumps(body).encode(), key

    def poll(self, timeout_s: float) -> list[Record]:
        """Return the events due at ``rate`` since :meth:`start`, waiting up to ``timeout_s``
        (the whole of it once the stream has ended, so the daemon's loop does not spin)."""
        if self._ended:
            self._sleep(timeout_s)
            return []
        due = int((self._clock() - self._started_at) * self.rate) - self._emitted
        if due <= 0:
            wait = (self._emitted + 1) / self.rate - (self._clock() - self._started_at)
            self._sleep(max(0.0, min(timeout_s, wait)))
            due = int((self._clock() - self._started_at) * self.rate) - self._emitted
        records = []
        for _ in range(min(max(due, 0), _MAX_BATCH)):
            event = self._event(self._emitted)
            if event is None:
                if not self._ended:
                    log.warning(
                        "replay reached the last nanosecond time (2262) less %d steps of room"
                        " for forecasts: no more events",
                        _FORECAST_ROOM,
                    )
                    self._ended = True
                break
            _, value, key = event
            records.append(Record(partition=0, offset=self._next, value=value, key=key))
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


def _cycles(table: pa.Table, columns: Sequence[str]) -> list[_Cycle]:
    """One cycle per series of ``table`` (one, unnamed, without a series-id column)."""
    if SERIES_ID_COLUMN not in table.column_names:
        return [_Cycle.of(None, table, columns)]
    ids = [str(i) for i in table.column(SERIES_ID_COLUMN).to_pylist()]
    rest = table.drop_columns([SERIES_ID_COLUMN])
    out = []
    for series_id in sorted(set(ids)):
        mask = pa.array([i == series_id for i in ids])
        out.append(_Cycle.of(series_id, rest.filter(mask), columns))
    return out


def _calendar(times: npt.NDArray[np.int64]) -> BaseOffset | None:
    """The calendar offset of times whose steps differ in length, else None (equal steps
    shift by whole spans)."""
    steps = np.diff(times)
    if len(steps) < 2 or (steps == steps[0]).all():
        return None
    # freq="infer" gives the offset itself (pandas 3 warns that infer_freq's string becomes
    # an offset) or None when the times follow no calendar.
    offset: BaseOffset | None = pd.DatetimeIndex(times.astype("datetime64[ns]"), freq="infer").freq
    return offset
