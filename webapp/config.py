"""Settings of the web application, read once from the environment by :meth:`Settings.from_env`.

The shared part (``SHM_DIR``, ``MAX_DATA_AGE_MS``, ``LOG_LEVEL``) comes from
:class:`contract.settings.SharedSettings`, so the workers and the daemon agree on it; every
bad value raises :class:`contract.errors.ConfigError` naming its variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BeforeValidator, model_validator

from contract.errors import ConfigError
from contract.partitions import ShardMap, format_partitions, parse_shard_map
from contract.settings import SharedSettings, env

__all__ = ["Settings"]


class Settings(SharedSettings):
    """Everything the app reads from the environment.

    ``max_inference_length`` is a ceiling; the effective maximum is also bounded by the
    loaded model's horizon. ``max_gap_steps`` is the irregular-spacing policy for caller
    data: runs of up to that many missing steps are interpolated, anything else is a 422.
    """

    max_body_bytes: int = env("MAX_BODY_BYTES", 1_048_576, "larger bodies get 413", ge=2)
    max_rows: int = env("MAX_ROWS", 10_000, "rows allowed in a caller's `data`", ge=1)
    max_inference_length: int = env(
        "MAX_INFERENCE_LENGTH",
        48,
        "ceiling of `inference_length` (the model's horizon bounds it too)",
        ge=1,
    )
    default_inference_length: int = env(
        "DEFAULT_INFERENCE_LENGTH", 1, "`inference_length` of a body that gives none", ge=1
    )
    max_gap_steps: int = env(
        "MAX_GAP_STEPS",
        0,
        "missing steps in caller data that are interpolated rather than refused",
        ge=0,
    )
    retry_after_s: int = env("READYZ_RETRY_AFTER_S", 1, "`Retry-After` of 503 answers", ge=1)
    metrics_dir: Path | None = env(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        "directory through which the metrics of every worker process are "
        "aggregated; a given one is created if needed and emptied of old samples at start",
        json_schema_extra={"doc_default": "a new directory in `/dev/shm` (Gunicorn's master)"},
    )
    follow_interval_ms: int = env(
        "WORKER_FOLLOW_INTERVAL_MS",
        20,
        "where the shm directory cannot be watched (inotify missing, or no directory yet), the "
        "longest each worker, even idle, waits before it opens a new generation and prepares "
        "its forecast; with the watch, a rename into the directory wakes it at once and it "
        "also looks at least every second",
        ge=10,
    )
    forecast_memo_series: int = env(
        "FORECAST_MEMO_SERIES",
        4096,
        "series forecasts each worker keeps (least recently used dropped first); a series "
        "not kept is forecast again on its next request",
        ge=1,
    )
    body_timeout_s: int = env(
        "REQUEST_BODY_TIMEOUT_S",
        10,
        "time allowed to receive a request body (gevent worker), else 408",
        ge=1,
    )

    shard_map: (
        Annotated[
            ShardMap, BeforeValidator(lambda v: parse_shard_map(v) if isinstance(v, str) else v)
        ]
        | None
    ) = env(
        "SHARD_MAP",
        None,
        "the shards of a topic sharded by partition, e.g. `0-5=http://shard-a,6-11=http://shard-b`"
        " (base URLs clients can reach): a `POST /predict` whose `series_id` belongs to another"
        " shard is answered 307 to it; needs `KAFKA_PARTITION_COUNT`, and `KAFKA_PARTITIONS` equal"
        " to one entry's partitions; unset: no routing",
    )

    @model_validator(mode="after")
    def _shard_map_fits(self) -> Self:
        """The map covers the topic and names this pod's partitions as one shard."""
        shards, count, owned = self.shard_map, self.kafka_partition_count, self.kafka_partitions
        if shards is None:
            return self
        if count is None:
            raise ConfigError("KAFKA_PARTITION_COUNT", "required when SHARD_MAP is set")
        if owned is None:
            raise ConfigError(
                "KAFKA_PARTITIONS", "required when SHARD_MAP is set: the partitions this pod owns"
            )
        try:
            shards.owners(count)
        except ValueError as exc:
            raise ConfigError("SHARD_MAP", f"{exc} (KAFKA_PARTITION_COUNT={count})") from None
        if shards.url_of(owned) is None:
            raise ConfigError(
                "KAFKA_PARTITIONS",
                f"{format_partitions(owned)} is not the partition set of one SHARD_MAP entry "
                f"({shards})",
            )
        return self

    @model_validator(mode="after")
    def _default_within_maximum(self) -> Self:
        if self.default_inference_length > self.max_inference_length:
            raise ConfigError(
                "DEFAULT_INFERENCE_LENGTH",
                f"{self.default_inference_length} exceeds MAX_INFERENCE_LENGTH "
                f"({self.max_inference_length})",
            )
        return self
