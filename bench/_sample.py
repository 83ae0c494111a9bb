"""The bundled sample series as a live window, and the model trained on it.

What ``bench.http`` and the load-test mix of ``bench.compare`` serve: the sample
(``contract.defaults.SAMPLE_PATH``, half-hourly demand) as a window of ``rows`` rows that moves
one row on at each call of :meth:`SampleWindow.next_table`, cycling over a thousand rows, and
the service's model fitted on the whole sample, so caller series on the sample's step (the
load test's synthetic and real modes) are accepted.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from contract.defaults import SAMPLE_PATH, SERIES_COLUMN
from forecasting.train import Options, train

__all__ = ["SampleWindow"]


def _table(frame: pd.DataFrame) -> pa.Table:
    """The sample series as a window table (``time`` UTC ns + the series column)."""
    times = pd.to_datetime(frame["time"]).dt.tz_localize("UTC")
    return pa.table(
        {
            "time": pa.array(times, type=pa.timestamp("ns", tz="UTC")),
            SERIES_COLUMN: pa.array(frame[SERIES_COLUMN], type=pa.float64()),
        }
    )


@dataclass
class SampleWindow:
    """The trained ``artifact`` (its ``model_version``) and windows of ``rows`` rows."""

    rows: int = 2000
    artifact: bytes = field(init=False)
    model_version: str = field(init=False)
    _table: pa.Table = field(init=False, repr=False)
    _ends: Iterator[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        frame = pd.read_parquet(SAMPLE_PATH)
        self.artifact, report = train(frame, options=Options(candidates=("ridge",)))  # as make run
        self.model_version = str(report["model_version"])
        self._table = _table(frame)
        self._ends = itertools.cycle(range(3000, 4000))

    def next_table(self) -> pa.Table:
        """The next window: one row later than the last one."""
        return self._table.slice(next(self._ends) - self.rows, self.rows)
