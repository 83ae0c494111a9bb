"""What one worker process serves from: its generation source, model cache and status file.

One :class:`WorkerState` lives in each worker (made by the app factory, stored in
``app.extensions["webapp"]``; nothing is opened until first use, after fork). Per request it
costs a ``Reader.current()`` (a mapped counter read when nothing changed) and an ``os.stat``
of the status file; everything else is derived once per generation
(:class:`~webapp.snapshot_view.SnapshotView`) or once per model
(:class:`~webapp.model_cache.ModelCache`), and each series' forecast once per series version
and model (:class:`~webapp.forecast_memo.ForecastMemo`, bounded by ``FORECAST_MEMO_SERIES``).
A :class:`webapp.follower.Follower` thread keeps that preparation ahead of requests.
"""

from __future__ import annotations

import contextlib
import time

from contract.status import DaemonStatus
from webapp.config import Settings
from webapp.daemon_status import StatusFileCache
from webapp.data_age import data_age_ms
from webapp.forecast_memo import ForecastMemo
from webapp.generation_source import GenerationSource
from webapp.model_cache import ModelCache
from webapp.readiness import Readiness, assess
from webapp.snapshot_view import SeriesForecast, SnapshotView

__all__ = ["FORECAST_DEMAND_S", "WorkerState"]

# How long after this worker last answered ``/predict`` from the window its follower keeps
# forecasting each new generation ahead of requests. Past it, an idle worker leaves the
# forecast to the first request that needs it (about a millisecond for a 2,000-row
# series): at 20 publications a second, forecasting every generation in every worker cost
# each about 2 % of a core for forecasts no request read.
FORECAST_DEMAND_S = 10.0


class WorkerState:
    """The per-process parts the views, the metrics and the follower share. Thread-safe
    (each part is)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = GenerationSource(settings.shm_dir)
        self.models = ModelCache(settings)
        self._status = StatusFileCache(settings.shm_dir)
        self.forecasts: ForecastMemo[SeriesForecast] = ForecastMemo(settings.forecast_memo_series)
        # A new worker is about to serve: it forecasts ahead until it has gone a while
        # without a request for the window's forecast.
        self._forecast_wanted = time.monotonic()

    def view(self) -> SnapshotView | None:
        """The newest generation's view (None before the first publication; see
        :meth:`GenerationSource.no_data_reason`)."""
        snapshot = self.source.current()
        return None if snapshot is None else SnapshotView.of(snapshot, self.forecasts)

    def daemon_status(self) -> DaemonStatus | None:
        return self._status.read()

    def data_age_ms(self, view: SnapshotView) -> int:
        return data_age_ms(view.snapshot, self.daemon_status())

    def readiness(self) -> Readiness:
        return assess(
            self.view(),
            self.models,
            self.daemon_status(),
            self.settings.max_data_age_ms,
            no_data=self.source.no_data_reason(),
            skipped=self.source.skipped_files(),
        )

    def forecast_wanted(self) -> None:
        """A request was answered from the window's forecast: keep forecasting new
        generations ahead of requests (for :data:`FORECAST_DEMAND_S` from now)."""
        self._forecast_wanted = time.monotonic()

    def forecasts_in_demand(self) -> bool:
        """Whether a request wanted the window's forecast within :data:`FORECAST_DEMAND_S`
        (or this worker started that recently)."""
        return time.monotonic() - self._forecast_wanted < FORECAST_DEMAND_S

    def prepare_newest(self) -> SnapshotView | None:
        """Open the newest generation and derive what requests need from it (summary, series
        catalog, model, and the forecast of a single-series window while
        :meth:`forecasts_in_demand`: with many series each is forecast on its first
        request); return it. Never raises: a failure is left for a request to report."""
        view = None
        with contextlib.suppress(Exception):
            view = self.view()
            if view is not None:
                view.summary()
                model = self.models.get(view.meta)
                if view.catalog().count == 1 and self.forecasts_in_demand():
                    view.forecast(model)
        return view

    def after_fork(self) -> None:
        """Called once per worker after fork, before it serves: replaces the locks made in a
        preloading master with ones of this process (under gevent they must be the patched
        kind). :meth:`prepare_newest` then readies the window for the first request."""
        self.source.after_fork()
        self.models.after_fork()
        self.forecasts.after_fork()
        self._forecast_wanted = time.monotonic()  # counted from this worker's start
