"""Wiring: configuration -> bootstrap -> source, publisher, model watcher -> :class:`Daemon`.

Start-up order: check that the shm directory may be adopted (see :mod:`cache_daemon.workdir`),
take its publisher lock (a second daemon on the same directory fails at once), read the newest
generation, choose the bootstrap (see
:mod:`cache_daemon.bootstrap`), install the model artifact if one is configured (one bounded
attempt; the watcher keeps trying), then run the loop. An unreachable S3 delays start-up by a
few bounded attempts at most; Kafka is contacted only inside the loop, which never gives up.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable

from cache_daemon.bootstrap import Bootstrap, from_generation, read_snapshot
from cache_daemon.config import DaemonConfig
from cache_daemon.daemon import Daemon
from cache_daemon.errors import ArtifactError, SnapshotError, StoreError
from cache_daemon.kafka_source import KafkaSource
from cache_daemon.model_watch import FileModelFetcher, ModelFetcher, ModelWatcher, S3ModelFetcher
from cache_daemon.publication import ModelInfo
from cache_daemon.replay import ReplaySource
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.sources import Source
from cache_daemon.status import Heartbeat, Liveness, StatusFile
from cache_daemon.workdir import open_publisher
from contract.metadata import Counters
from objectstore import ObjectStore
from shm import Reader, ShmError

__all__ = ["run_service"]

log = logging.getLogger(__name__)
_SNAPSHOT_ATTEMPTS = 3


def run_service(config: DaemonConfig, stop: threading.Event) -> None:
    """Run the daemon until ``stop`` is set. Raises only for errors no retry can fix
    (configuration, a locked or unsafe shm directory, an unreadable replay file)."""
    store = ObjectStore(config.s3) if config.s3 is not None else None
    with open_publisher(config.shm_dir, config.keep_generations) as publisher:
        status = StatusFile(config.shm_dir)
        liveness = Liveness()
        heartbeat = Heartbeat(status, liveness)

        def starting(error: str | None = None) -> None:
            liveness.beat()
            status.write(
                state="starting",
                source=config.source,
                generation=publisher.generation,
                last_publish_ns=None,
                lag={},
                counters=Counters(),
                last_error=error,
            )

        starting()
        heartbeat.start()
        try:
            source = _make_source(config)
            windows, boot = _bootstrap(config, source, store, stop, starting)
            starting()
            watcher, model = _model(config, store, boot.model if boot else None)
            source.start(boot.offsets if boot else None, resume_after_ns=windows.time_max)
            daemon = Daemon(
                source=source,
                publisher=publisher,
                windows=windows,
                topic=config.kafka_topic if config.source == "kafka" else "",
                shm_dir=config.shm_dir,
                publish_interval_ms=config.publish_interval_ms,
                publish_burst=config.publish_burst,
                gap_policy=config.gap_policy,
                layout=config.publish_layout,
                series_per_segment=config.series_per_segment,
                counters=boot.counters if boot else None,
                model=model,
                watcher=watcher,
                status=status,
                liveness=liveness,
            )
            if watcher is not None:
                watcher.start()
            first = None
            if boot is not None and boot.publish:
                first = "snapshot" if boot.origin == "snapshot" else source.kind
            # Everything allocated so far lives as long as the process: keep it out of the
            # cyclic collector, whose full passes otherwise pause the loop for tens of ms.
            gc.collect()
            gc.freeze()
            daemon.run(stop, publish_first=first)
        finally:
            heartbeat.stop()


def _bootstrap(
    config: DaemonConfig,
    source: Source,
    store: ObjectStore | None,
    stop: threading.Event,
    report: Callable[[str], None],
) -> tuple[SeriesWindows, Bootstrap | None]:
    """The initial windows and where they came from (see :mod:`cache_daemon.bootstrap`)."""
    boot = _last_generation(config)
    if boot is None and isinstance(source, ReplaySource):
        boot = Bootstrap(table=source.history(), origin="replay")
    if boot is None and store is not None and config.snapshot_bucket and config.snapshot_key:
        boot = _snapshot(
            store=store,
            config=config,
            bucket=config.snapshot_bucket,
            key=config.snapshot_key,
            stop=stop,
            report=report,
        )
    windows = _empty_windows(config)
    if boot is not None:
        try:
            windows.load(boot.table)
        except SnapshotError as exc:
            log.error("bootstrap rejected", extra={"origin": boot.origin, "error": str(exc)})
            windows, boot = _empty_windows(config), None
    if boot is not None:
        # A series the TTL dropped at load (the TTL was shortened) is counted once.
        boot.counters.series_expired += windows.pop_expired()
        if not boot.publish:
            windows.clear_changed()  # readers already see exactly these rows
    if windows.series_count > config.max_series:
        log.warning(
            "more series than MAX_SERIES; all kept, new series refused",
            extra={"series": windows.series_count, "max_series": config.max_series},
        )
    log.info(
        "bootstrap",
        extra={
            "origin": boot.origin if boot else "none",
            "rows": len(windows),
            "series": windows.series_count,
            "offsets": boot.offsets if boot else None,
        },
    )
    return windows, boot


def _empty_windows(config: DaemonConfig) -> SeriesWindows:
    return SeriesWindows(
        config.columns,
        max_rows=config.window_rows,
        max_duration_ns=config.window_duration_ns,
        max_series=config.max_series,
        ttl_ns=config.series_ttl_ns,
        default_series=config.default_series_id,
    )


def _make_source(config: DaemonConfig) -> Source:
    if config.source == "replay":
        return ReplaySource(config.replay_path, config.columns, config.replay_rate)
    duration = config.window_duration_s
    return KafkaSource(
        servers=config.kafka_bootstrap_servers,
        topic=config.kafka_topic,
        dlq_topic=config.kafka_dlq_topic,
        seek_back_ms=int(duration * 1000) if duration else None,
        partitions=config.kafka_partitions,
        partition_count=config.kafka_partition_count,
    )


def _last_generation(config: DaemonConfig) -> Bootstrap | None:
    try:
        snapshot = Reader(config.shm_dir).current()
    except (ShmError, OSError) as exc:
        log.warning("cannot read the last generation", extra={"error": str(exc)})
        return None
    if snapshot is None:
        return None
    return from_generation(
        snapshot.table,
        snapshot.metadata,
        source=config.source,
        topic=config.kafka_topic,
        directory=config.shm_dir,
    )


def _snapshot(
    *,
    store: ObjectStore,
    config: DaemonConfig,
    bucket: str,
    key: str,
    stop: threading.Event,
    report: Callable[[str], None],
) -> Bootstrap | None:
    where = f"s3://{bucket}/{key}"
    for attempt in range(1, _SNAPSHOT_ATTEMPTS + 1):
        try:
            obj = store.get(bucket, key)
            boot = read_snapshot(obj.data, topic=config.kafka_topic, where=where)
        except StoreError as exc:
            log.warning("snapshot unavailable", extra={"attempt": attempt, "error": str(exc)})
            report(f"snapshot: {exc}")
            if exc.missing or stop.wait(float(attempt)):
                return None
            continue
        except SnapshotError as exc:
            log.error("snapshot unusable", extra={"error": str(exc)})
            return None
        log.info("snapshot loaded", extra={"where": where, "rows": boot.table.num_rows})
        return boot
    log.error("snapshot unavailable; starting from Kafka alone", extra={"where": where})
    return None


def _model(
    config: DaemonConfig, store: ObjectStore | None, previous: ModelInfo | None
) -> tuple[ModelWatcher | None, ModelInfo | None]:
    fetcher: ModelFetcher
    if config.model_path is not None:
        fetcher = FileModelFetcher(config.model_path)
    elif config.model_bucket and config.model_key and store is not None:
        fetcher = S3ModelFetcher(store, config.model_bucket, config.model_key)
    else:
        return None, previous
    watcher = ModelWatcher(fetcher, config.shm_dir, interval_s=config.model_poll_interval_s)
    started = time.monotonic()
    try:
        model = watcher.check() or previous
    except (StoreError, ArtifactError, OSError) as exc:
        watcher.error = f"model: {exc}"
        log.error("model not installed", extra={"error": str(exc)})
        model = previous
    log.info(
        "model",
        extra={
            "model_version": model.version if model else None,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return watcher, model
