"""What one generation offers: its metadata, a summary of its table, its forecast.

There is one :class:`SnapshotView` per generation per process (:meth:`SnapshotView.of`),
and everything it answers depends on the generation alone, so it is computed once through
``Snapshot.derive``: the metadata is parsed once (``GenerationMeta.from_metadata``), the
summary (rows, time range, checksum) once, and for a model the window's forecast origin and
full-horizon forecast once, encoded. A request then only joins its first steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from contract.metadata import GenerationMeta
from forecasting import Forecaster, ForecastingError, Origin
from shm import Snapshot, table_checksum
from webapp.forecasts import Forecast, window_forecast
from webapp.model_cache import LoadedModel

__all__ = ["SnapshotView", "UnusableWindowError", "WindowSummary"]

# The window may miss events (late or lost); interpolating short holes keeps /predict usable.
_WINDOW_MAX_GAP_STEPS = 48
_VIEW_KEY = "webapp.view"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Facts about one generation's table."""

    rows: int
    time_min: str | None
    time_max: str | None
    checksum: str


class UnusableWindowError(Exception):
    """The window cannot be forecast by the model; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SnapshotView:
    """One generation and what is derived from it (see the module docstring). Read-only."""

    __slots__ = ("meta", "snapshot")

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.meta = GenerationMeta.from_metadata(snapshot.metadata)

    @staticmethod
    def of(snapshot: Snapshot) -> SnapshotView:
        """The view of ``snapshot``, made once per generation per process."""
        return snapshot.derive(_VIEW_KEY, SnapshotView)

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def summary(self) -> WindowSummary:
        return self.snapshot.derive("webapp.summary", _summarize)

    def model_version(self, model: LoadedModel | None) -> str | None:
        """The version the generation states for its model, else the loaded model's own."""
        return self.meta.model_version or (model.forecaster.version if model else None)

    def forecast(self, model: LoadedModel) -> Forecast:
        """The window's full-horizon forecast by ``model``; raise :class:`UnusableWindowError`
        when the window cannot feed it or the forecast is not finite."""
        # Keyed by the model's file: each derivation is a pure function of (window, model).
        # derive holds the snapshot's lock while it computes, so one derivation never
        # starts another from inside it.
        origin = _usable(
            self.snapshot.derive(
                "webapp.origin:" + model.file,
                lambda snap: _window_origin(snap, model.forecaster),
            )
        )
        return _usable(
            self.snapshot.derive(
                "webapp.forecast:" + model.file,
                lambda _snap: window_forecast(model.forecaster, origin),
            )
        )


def _usable(result: T | str) -> T:
    if isinstance(result, str):
        raise UnusableWindowError(result)
    return result


def _window_origin(snapshot: Snapshot, model: Forecaster) -> Origin | str:
    table = snapshot.table
    if "time" not in table.column_names or model.target not in table.column_names:
        return f"window lacks column 'time' or {model.target!r} (has {table.column_names})"
    rows = table.num_rows
    if rows < model.min_rows:
        return f"window has {rows} rows, the model needs at least {model.min_rows}"
    # Only the tail feeds the origin row; enough of it to survive interpolated gaps.
    tail = table.slice(max(0, rows - model.max_lags * 2))
    try:
        times = np.asarray(tail.column("time").to_numpy(), dtype="datetime64[ns]").view(np.int64)
        values = np.asarray(tail.column(model.target).to_numpy(), dtype=np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            return model.prepare(times, values, max_gap_steps=_WINDOW_MAX_GAP_STEPS)
    except (ForecastingError, ValueError, TypeError) as exc:
        return f"window cannot feed the model: {exc}"


def _summarize(snapshot: Snapshot) -> WindowSummary:
    table = snapshot.table
    tmin = tmax = None
    if table.num_rows and "time" in table.column_names:
        col = table.column("time")
        tmin, tmax = _iso(col[0].value), _iso(col[-1].value)
    return WindowSummary(
        rows=table.num_rows, time_min=tmin, time_max=tmax, checksum=table_checksum(table)
    )


def _iso(ns: object) -> str | None:
    if not isinstance(ns, int):
        return None
    return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="s")) + "Z"
