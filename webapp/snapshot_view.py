"""What one generation offers: its metadata, a summary of its table, its series, their
forecasts.

There is one :class:`SnapshotView` per generation per process (:meth:`SnapshotView.of`).
What depends on the whole generation is computed once through ``Snapshot.derive``: the
metadata is parsed once (``GenerationMeta.from_metadata``), the summary (rows, time range,
checksum) once, the series catalog (:class:`webapp.series_catalog.SeriesCatalog`) once. For
an inline generation the summary is computed from the table (its checksum recomputed from the
mapped bytes, to prove they are what the daemon published); for a segmented one it is the
manifest's row count and the daemon's record of the time range and checksum (recomputing
them would read every row: O(window) per generation), and ``checksum_verified`` says so.
A series' forecast is computed on the first request for that series, from its rows alone,
and kept in the worker's :class:`webapp.forecast_memo.ForecastMemo` (encoded, full horizon);
a request then only joins its first steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from contract.metadata import GenerationMeta
from forecasting import Forecaster, ForecastingError, Origin
from shm import CorruptGenerationError, Snapshot, table_checksum
from webapp.forecast_memo import ForecastMemo
from webapp.forecasts import Forecast, window_forecast
from webapp.model_cache import LoadedModel
from webapp.series_catalog import SeriesCatalog, SeriesRows

__all__ = [
    "SeriesForecast",
    "SeriesRequiredError",
    "SnapshotView",
    "UnknownSeriesError",
    "UnusableWindowError",
    "WindowSummary",
    "window_gap_bound",
]

_VIEW_KEY = "webapp.view"
T = TypeVar("T")
# A series' forecast, or the reason it has none (kept in the memo too: a series that cannot
# be forecast is not recomputed on every request).
SeriesForecast = Forecast | str


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Facts about one generation's table. ``checksum_verified``: this process computed
    ``checksum`` from the data it maps (an inline generation), as opposed to reporting the
    daemon's ``window_checksum`` (a segmented one)."""

    rows: int
    time_min: str | None
    time_max: str | None
    checksum: str
    checksum_verified: bool


class UnusableWindowError(Exception):
    """The window (or the series asked for) cannot be forecast by the model; ``reason``
    says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownSeriesError(Exception):
    """The generation holds no series ``series_id``; ``count`` series it does hold."""

    def __init__(self, series_id: str, count: int) -> None:
        super().__init__(series_id)
        self.series_id = series_id
        self.count = count


class SeriesRequiredError(Exception):
    """No series was named and the generation holds ``count`` (more than one)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


class SnapshotView:
    """One generation and what is derived from it (see the module docstring). Read-only."""

    __slots__ = ("memo", "meta", "snapshot")

    def __init__(self, snapshot: Snapshot, memo: ForecastMemo[SeriesForecast]) -> None:
        self.snapshot = snapshot
        self.memo = memo
        self.meta = GenerationMeta.from_metadata(snapshot.metadata)

    @staticmethod
    def of(snapshot: Snapshot, memo: ForecastMemo[SeriesForecast]) -> SnapshotView:
        """The view of ``snapshot``, made once per generation per process; its series'
        forecasts are kept in ``memo`` (the process's)."""
        return snapshot.derive(_VIEW_KEY, lambda snap: SnapshotView(snap, memo))

    @property
    def generation(self) -> int:
        return self.snapshot.generation

    def summary(self) -> WindowSummary:
        # The catalog first: derive holds the snapshot's lock while it computes, so one
        # derivation never starts another from inside it.
        catalog, meta = self.catalog(), self.meta
        return self.snapshot.derive("webapp.summary", lambda snap: _summarize(snap, catalog, meta))

    def catalog(self) -> SeriesCatalog:
        """The generation's series (counted, indexed and listed once)."""
        return SeriesCatalog.of(self.snapshot)

    def model_version(self, model: LoadedModel | None) -> str | None:
        """The version the generation states for its model, else the loaded model's own."""
        return self.meta.model_version or (model.forecaster.version if model else None)

    def series(self, series_id: str | None = None) -> SeriesRows:
        """The rows of ``series_id``, or of the window's only series when None.

        Raises :class:`UnknownSeriesError` for an id the generation does not hold,
        :class:`SeriesRequiredError` for None when it holds several, and
        :class:`UnusableWindowError` when it holds none.
        """
        catalog = self.catalog()
        if catalog.problem is not None:
            raise UnusableWindowError(catalog.problem)
        if series_id is not None:
            try:
                rows = catalog.lookup(series_id)
            except CorruptGenerationError as exc:  # a segment file altered after publication
                raise UnusableWindowError(str(exc)) from None
            if rows is None:
                raise UnknownSeriesError(series_id, catalog.count)
            return rows
        if catalog.count == 0:
            raise UnusableWindowError("the window holds no series (no rows)")
        rows = catalog.only()
        if rows is None:
            raise SeriesRequiredError(catalog.count)
        return rows

    def forecast(self, model: LoadedModel, series_id: str | None = None) -> Forecast:
        """The full-horizon forecast by ``model`` of ``series_id`` (of the window's only
        series when None; errors as :meth:`series`); raise :class:`UnusableWindowError` when
        that series cannot feed the model or its forecast is not finite."""
        return self.forecast_of(model, self.series(series_id))

    def forecast_of(self, model: LoadedModel, rows: SeriesRows) -> Forecast:
        """The full-horizon forecast of the series ``rows`` (of this generation) by
        ``model``, from the memo or computed once; :class:`UnusableWindowError` as
        :meth:`forecast`."""
        key = (model.file, rows.version, rows.series_id)
        return _usable(self.memo.get(key, lambda: _series_forecast(rows, model.forecaster)))


def _series_forecast(rows: SeriesRows, model: Forecaster) -> SeriesForecast:
    """The full-horizon forecast of one series by ``model``, or why there is none."""
    origin = _series_origin(rows, model)
    if isinstance(origin, str):
        return origin
    return window_forecast(model, origin)


def _usable(result: T | str) -> T:
    if isinstance(result, str):
        raise UnusableWindowError(result)
    return result


def _series_origin(rows: SeriesRows, model: Forecaster) -> Origin | str:
    table = rows.table
    if "time" not in table.column_names or model.target not in table.column_names:
        return f"window lacks column 'time' or {model.target!r} (has {table.column_names})"
    count = table.num_rows
    if count < model.min_rows:
        return f"{_which(rows)} has {count} rows, the model needs at least {model.min_rows}"
    # Only the tail feeds the origin row; enough of it to survive interpolated gaps.
    tail = SeriesRows(rows.series_id, rows.version, table.slice(max(0, count - model.max_lags * 2)))
    try:
        values = tail.values(model.target)
        with np.errstate(over="ignore", invalid="ignore"):
            return model.prepare(tail.times_ns(), values, max_gap_steps=window_gap_bound(model))
    except (ForecastingError, ValueError, TypeError) as exc:
        return f"{_which(rows)} cannot feed the model: {exc}"


def window_gap_bound(model: Forecaster) -> int:
    """The longest run of missing steps interpolated in a series of the window: one season of
    the model's frequency (48 half-hours, 24 hours, 12 months...), or the model's own bound
    if larger. The window may miss events (late or lost), and filling short holes keeps the
    series forecastable; a longer hole would be filled with a line where the season's shape
    belongs, so the forecast starts from the run after it instead."""
    return max(model.max_gap_steps, model.season)


def _which(rows: SeriesRows) -> str:
    return f"series {rows.series_id!r}"


def _summarize(snapshot: Snapshot, catalog: SeriesCatalog, meta: GenerationMeta) -> WindowSummary:
    span = catalog.time_range()
    tmin, tmax = (None, None) if span is None else (_iso(span[0]), _iso(span[1]))
    verified = not snapshot.segmented
    checksum = table_checksum(snapshot.table) if verified else meta.window_checksum
    return WindowSummary(snapshot.num_rows, tmin, tmax, checksum, verified)


def _iso(ns: object) -> str | None:
    if not isinstance(ns, int):
        return None
    return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="s")) + "Z"
