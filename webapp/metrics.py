"""Prometheus metrics, aggregated over Gunicorn workers.

Multiprocess mode is decided by ``PROMETHEUS_MULTIPROC_DIR``, which the Gunicorn master sets
(and wipes, :mod:`webapp.metrics_dir`) before anything imports ``prometheus_client``; each worker
then writes its samples to mmapped files there and ``/metrics`` merges them. Facts that
belong to the moment of the scrape (current generation, data age, model version, the
daemon's counters) are computed by :class:`_ScrapeCollector` in the answering worker.
Without the variable (tests with Flask's client) the process-local registry is used.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from contract.status import DaemonStatus
from webapp.model_cache import NoModelError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from webapp.worker_state import WorkerState

__all__ = ["observe_prediction", "observe_request", "render", "set_worker_generation"]

REQUESTS = Counter(
    "webapp_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
LATENCY = Histogram(
    "webapp_http_request_duration_seconds",
    "Time spent in the application per request",
    ["route", "status"],
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PREDICTIONS = Counter(
    "webapp_predictions_total", "Successful forecasts by input source", ["source"]
)
PREDICTED_POINTS = Counter("webapp_predicted_points_total", "Forecast points returned")
# Created on first use, so the preloading master (which serves nothing) has no sample. The
# lock makes creation happen once per process whatever the number of threads asking: a second
# registration of the same name raises in prometheus_client.
_worker_generation: Gauge | None = None
_worker_generation_lock = threading.Lock()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    LATENCY.labels(route, str(status)).observe(seconds)


def observe_prediction(source: str, points: int) -> None:
    PREDICTIONS.labels(source).inc()
    PREDICTED_POINTS.inc(points)


def set_worker_generation(generation: int) -> None:
    """Record the generation this worker process serves now (one series per live worker).

    Thread-safe: the gauge is created at most once per process, under a lock.
    """
    global _worker_generation  # noqa: PLW0603 (one gauge per process, made lazily)
    with _worker_generation_lock:
        if _worker_generation is None:
            _worker_generation = Gauge(
                "webapp_worker_generation",
                "Generation served by each live worker",
                multiprocess_mode="liveall",
            )
        _worker_generation.set(generation)


class _ScrapeCollector:
    """Scrape-time gauges from the window, the model and the daemon status file."""

    def __init__(self, state: WorkerState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        state = self._state
        view = state.view()
        gen = GaugeMetricFamily("webapp_generation", "Newest published generation")
        age = GaugeMetricFamily("webapp_data_age_seconds", "Age of the newest window data")
        rows = GaugeMetricFamily("webapp_window_rows", "Rows in the newest window")
        series = GaugeMetricFamily("webapp_window_series", "Series in the newest window")
        info = GaugeMetricFamily(
            "webapp_model_info", "Model serving the newest generation", labels=["version"]
        )
        ready = GaugeMetricFamily("webapp_ready", "1 when /readyz would answer 200")
        bound = GaugeMetricFamily(
            "webapp_max_data_age_seconds", "Staleness bound of /readyz (MAX_DATA_AGE_MS)"
        )
        bound.add_metric([], state.settings.max_data_age_ms / 1000.0)
        if view is not None:
            gen.add_metric([], view.generation)
            age.add_metric([], state.data_age_ms(view) / 1000.0)
            rows.add_metric([], view.snapshot.num_rows)
            series.add_metric([], view.catalog().count)
            with contextlib.suppress(NoModelError):
                version = view.model_version(state.models.get(view.meta))
                if version:
                    info.add_metric([version], 1)
        ready.add_metric([], 1 if state.readiness().ready else 0)
        skipped = GaugeMetricFamily(
            "webapp_shm_skipped_files",
            "Files in the shm directory this worker's reader skipped (corrupt, unsafe, foreign)",
        )
        skipped.add_metric([], len(state.source.skipped_files()))
        yield from (gen, age, rows, series, info, ready, bound, skipped)
        yield from _volume_metrics(state.settings.shm_dir)
        yield from _daemon_metrics(state.daemon_status())


def _volume_metrics(directory: Path) -> Iterator[Metric]:
    """Size and free space of the file system holding the window (nothing if unreadable)."""
    try:
        fs = os.statvfs(directory)
    except OSError:
        return
    size = GaugeMetricFamily("webapp_shm_volume_size_bytes", "Size of the shm volume")
    size.add_metric([], fs.f_blocks * fs.f_frsize)
    free = GaugeMetricFamily(
        "webapp_shm_volume_free_bytes", "Bytes of the shm volume free for the daemon"
    )
    free.add_metric([], fs.f_bavail * fs.f_frsize)
    yield from (size, free)


def _daemon_metrics(status: DaemonStatus | None) -> Iterator[Metric]:
    up = GaugeMetricFamily("daemon_status_present", "1 when the daemon status file is readable")
    up.add_metric([], 0 if status is None else 1)
    yield up
    if status is None:
        return
    state = GaugeMetricFamily(
        "daemon_state", "Daemon state (1 for the current one)", labels=["state"]
    )
    if status.state is not None:
        state.add_metric([status.state], 1)
    yield state
    if status.heartbeat_ns is not None:
        hb = GaugeMetricFamily("daemon_heartbeat_seconds", "Daemon heartbeat, Unix time")
        hb.add_metric([], status.heartbeat_ns / 1e9)
        yield hb
    if status.started_ns is not None:
        start = GaugeMetricFamily(
            "daemon_start_time_seconds", "Start of the daemon process, Unix time"
        )
        start.add_metric([], status.started_ns / 1e9)
        yield start
    lag = GaugeMetricFamily("daemon_lag", "Records behind the end offset", labels=["partition"])
    for part, behind in status.lag.items():
        lag.add_metric([part], behind)
    yield lag
    counters = status.counters
    for name, value in (
        ("events", counters.events),
        ("dropped_late", counters.dropped_late),
        ("publish_errors", counters.publish_errors),
    ):
        family = CounterMetricFamily(f"daemon_{name}", f"Daemon counter {name}")
        family.add_metric([], value)
        yield family
    dead = CounterMetricFamily("daemon_dead_letters", "Records sent to the DLQ", labels=["reason"])
    for reason, count in counters.dead_letters.items():
        dead.add_metric([reason], count)
    yield dead


def render(state: WorkerState) -> tuple[bytes, str]:
    """The exposition text for ``/metrics`` and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    multiproc_dir = state.settings.metrics_dir
    if multiproc_dir is not None:
        MultiProcessCollector(registry, path=str(multiproc_dir))  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, LATENCY, PREDICTIONS, PREDICTED_POINTS, _worker_generation):
            if collector is not None:
                registry.register(collector)
    registry.register(_ScrapeCollector(state))
    return generate_latest(registry), CONTENT_TYPE_LATEST
