"""Prometheus metrics, aggregated over Gunicorn workers.

Multiprocess mode is decided by ``PROMETHEUS_MULTIPROC_DIR``, which ``gunicorn.conf.py``
sets (and wipes) in the master before anything imports ``prometheus_client``; each worker
then writes its samples to mmapped files there and ``/metrics`` merges them. Facts that
belong to the moment of the scrape (current generation, data age, model version, the
daemon's counters) are computed by :class:`_ScrapeCollector` in the answering worker.
Without the variable (tests with Flask's client) the process-local registry is used.
"""

from __future__ import annotations

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

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from webapp.window import WindowAccess

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

    def __init__(self, access: WindowAccess) -> None:
        self._access = access

    def collect(self) -> Iterator[Metric]:
        access = self._access
        snapshot = access.snapshot()
        gen = GaugeMetricFamily("webapp_generation", "Newest published generation")
        age = GaugeMetricFamily("webapp_data_age_seconds", "Age of the newest window data")
        rows = GaugeMetricFamily("webapp_window_rows", "Rows in the newest window")
        info = GaugeMetricFamily(
            "webapp_model_info", "Model serving the newest generation", labels=["version"]
        )
        ready = GaugeMetricFamily("webapp_ready", "1 when /readyz would answer 200")
        bound = GaugeMetricFamily(
            "webapp_max_data_age_seconds", "Staleness bound of /readyz (MAX_DATA_AGE_MS)"
        )
        bound.add_metric([], access.settings.max_data_age_ms / 1000.0)
        if snapshot is not None:
            gen.add_metric([], snapshot.generation)
            age.add_metric([], access.data_age_ms(snapshot) / 1000.0)
            rows.add_metric([], snapshot.table.num_rows)
            model, _ = access.model(snapshot)
            version = access.model_version(snapshot, model)
            if model is not None and version:
                info.add_metric([version], 1)
        ready.add_metric([], 1 if access.readiness().ready else 0)
        skipped = GaugeMetricFamily(
            "webapp_shm_skipped_files",
            "Files in the shm directory this worker's reader skipped (corrupt, unsafe, foreign)",
        )
        skipped.add_metric([], len(access.skipped_files()))
        yield from (gen, age, rows, info, ready, bound, skipped)
        yield from _volume_metrics(access.settings.shm_dir)
        yield from _daemon_metrics(access.daemon_status())


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


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _daemon_metrics(status: dict[str, object] | None) -> Iterator[Metric]:
    up = GaugeMetricFamily("daemon_status_present", "1 when the daemon status file is readable")
    up.add_metric([], 0 if status is None else 1)
    yield up
    if status is None:
        return
    state = GaugeMetricFamily(
        "daemon_state", "Daemon state (1 for the current one)", labels=["state"]
    )
    if isinstance(status.get("state"), str):
        state.add_metric([str(status["state"])], 1)
    yield state
    heartbeat = _number(status.get("heartbeat_ns"))
    if heartbeat is not None:
        hb = GaugeMetricFamily("daemon_heartbeat_seconds", "Daemon heartbeat, Unix time")
        hb.add_metric([], heartbeat / 1e9)
        yield hb
    started = _number(status.get("started_ns"))
    if started is not None:
        start = GaugeMetricFamily(
            "daemon_start_time_seconds", "Start of the daemon process, Unix time"
        )
        start.add_metric([], started / 1e9)
        yield start
    lag = GaugeMetricFamily("daemon_lag", "Records behind the end offset", labels=["partition"])
    raw_lag = status.get("lag")
    for part, value in raw_lag.items() if isinstance(raw_lag, dict) else ():
        if (n := _number(value)) is not None:
            lag.add_metric([str(part)], n)
    yield lag
    counters = status.get("counters")
    if not isinstance(counters, dict):
        return
    for key in ("events", "dropped_late", "publish_errors"):
        if (n := _number(counters.get(key))) is not None:
            family = CounterMetricFamily(f"daemon_{key}", f"Daemon counter {key}")
            family.add_metric([], n)
            yield family
    dead = CounterMetricFamily("daemon_dead_letters", "Records sent to the DLQ", labels=["reason"])
    raw_dead = counters.get("dead_letters")
    for reason, value in raw_dead.items() if isinstance(raw_dead, dict) else ():
        if (n := _number(value)) is not None:
            dead.add_metric([str(reason)], n)
    yield dead


def render(access: WindowAccess) -> tuple[bytes, str]:
    """The exposition text for ``/metrics`` and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    multiproc_dir = access.settings.metrics_dir
    if multiproc_dir is not None:
        MultiProcessCollector(registry, path=str(multiproc_dir))  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, LATENCY, PREDICTIONS, PREDICTED_POINTS, _worker_generation):
            if collector is not None:
                registry.register(collector)
    registry.register(_ScrapeCollector(access))
    return generate_latest(registry), CONTENT_TYPE_LATEST
