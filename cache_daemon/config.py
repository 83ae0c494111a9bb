"""Daemon configuration: one immutable settings object, built once from the environment.

``os.environ`` is read only by the entry point, which passes it to :meth:`DaemonConfig.from_env`
(:class:`contract.settings.EnvSettings`). Every malformed or contradictory variable raises
:class:`~contract.errors.ConfigError` naming it; each field's ``description`` is its line in
the documentation's variable table.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from contract import defaults, series
from contract.errors import ConfigError
from contract.series import check_series_id
from contract.settings import SharedSettings, env
from objectstore.config import S3Config
from shm import SERIES_PER_SEGMENT

__all__ = ["DEFAULT_REPLAY_PATH", "DaemonConfig", "S3Config"]

SourceKind = Literal["kafka", "replay"]
GapPolicy = Literal["keep", "reindex"]
PublishLayout = Literal["auto", "inline", "segmented"]

DEFAULT_REPLAY_PATH = defaults.SAMPLE_PATH
# A window shorter than a millisecond holds nothing; one longer than a century overflows the
# nanosecond arithmetic.
_MIN_DURATION_S = 0.001
_MAX_DURATION_S = 100 * 365.25 * 86400


def _matching(pattern: str, what: str) -> AfterValidator:
    """A check that a string matches ``pattern`` in full (``what`` names the expected form)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


def _split(keep_empty: bool) -> BeforeValidator:
    """A comma-separated variable as a tuple of stripped items."""

    def split(value: object) -> object:
        if not isinstance(value, str):
            return value
        items = (item.strip() for item in value.split(","))
        return tuple(item for item in items if keep_empty or item)

    return BeforeValidator(split)


def _zero_is_unbounded(value: float | None) -> float | None:
    return value or None


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _distinct_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    if "time" in columns:
        raise ValueError("'time' is the index column, not a series column")
    if len(set(columns)) != len(columns):
        raise ValueError("column names repeat")
    return columns


HostPort = Annotated[str, _matching(r"[^\s:/]+:\d{1,5}", "host:port")]
Topic = Annotated[str, _matching(r"[A-Za-z0-9._-]{1,249}", "a valid topic name")]
Bucket = Annotated[str, _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "a valid S3 bucket name")]
Column = Annotated[str, _matching(r"[A-Za-z_][A-Za-z0-9_]{0,62}", "a valid column name")]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class DaemonConfig(SharedSettings):
    """Everything the daemon needs to know, validated (``SHM_DIR``, ``MAX_DATA_AGE_MS`` and
    ``LOG_LEVEL`` come from :class:`~contract.settings.SharedSettings`).

    ``window_rows`` / ``window_duration_s``: ``None`` means "not bounded by that measure"; at
    least one of the two is set.
    """

    kafka_bootstrap_servers: Annotated[tuple[HostPort, ...], _split(keep_empty=False)] = env(
        "KAFKA_BOOTSTRAP_SERVERS", (), "Kafka brokers, `host:port[,host:port…]`; unset: no Kafka"
    )
    source: Annotated[SourceKind, BeforeValidator(_lower)] = Field(
        default_factory=lambda d: "kafka" if d.get("kafka_bootstrap_servers") else "replay",
        validation_alias="DAEMON_SOURCE",
        description="`kafka` or `replay` (the bundled sample)",
        json_schema_extra={
            "doc_default": "`kafka` when `KAFKA_BOOTSTRAP_SERVERS` is set, else `replay`"
        },
    )
    kafka_topic: Topic = env("KAFKA_TOPIC", defaults.TOPIC, "input topic")
    kafka_dlq_topic: Topic = Field(
        default_factory=lambda d: f"{d.get('kafka_topic', defaults.TOPIC)}.dlq",
        validation_alias="KAFKA_DLQ_TOPIC",
        description="dead-letter topic",
        json_schema_extra={"doc_default": "`<KAFKA_TOPIC>.dlq`"},
    )
    s3: S3Config | None = env(
        "S3_ENDPOINT",
        None,
        "object store for the snapshot and the model (`host:port`); the other "
        "`S3_*` variables apply when it is set",
    )
    snapshot_bucket: Bucket | None = env(
        "SNAPSHOT_BUCKET", None, "bucket of the bootstrap snapshot"
    )
    snapshot_key: str | None = env("SNAPSHOT_KEY", None, "key of the bootstrap snapshot parquet")
    model_bucket: Bucket | None = env("MODEL_BUCKET", None, "bucket of the model artifact")
    model_key: str | None = env(
        "MODEL_KEY", None, "key of the model artifact (its digest in `<key>.sha256`)"
    )
    model_path: Path | None = env(
        "MODEL_PATH", None, "model artifact file instead of S3 (its digest in `<path>.sha256`)"
    )
    model_poll_interval_s: Finite = env(
        "MODEL_POLL_INTERVAL_S", 30.0, "how often the artifact is checked for a new version", ge=0.1
    )
    columns: Annotated[
        tuple[Column, ...], _split(keep_empty=True), AfterValidator(_distinct_columns)
    ] = env(
        "SERIES_COLUMNS",
        (defaults.SERIES_COLUMN,),
        "value columns, comma-separated (all required in every event)",
    )
    window_rows: Annotated[
        Annotated[int, Field(ge=0)] | None, AfterValidator(_zero_is_unbounded)
    ] = env("WINDOW_ROWS", 4032, "rows kept per series (`0`: no row bound)")
    window_duration_s: Annotated[
        Annotated[Finite, Field(ge=0)] | None, AfterValidator(_zero_is_unbounded)
    ] = env(
        "WINDOW_DURATION_S",
        None,
        "keep each series' rows newer than its newest - this; also the seek-back of a fresh start",
    )
    default_series_id: Annotated[str, AfterValidator(check_series_id)] = env(
        "DEFAULT_SERIES_ID",
        series.DEFAULT_SERIES_ID,
        "series of the records without a key (UTF-8, at most 128 bytes)",
    )
    max_series: int = env(
        "MAX_SERIES",
        100_000,
        "series held at most; a record for a new series beyond it goes to the dead-letter "
        "topic (`series_limit`)",
        ge=1,
    )
    series_ttl_s: Annotated[
        Annotated[Finite, Field(ge=0)] | None, AfterValidator(_zero_is_unbounded)
    ] = env(
        "SERIES_TTL_S",
        None,
        "drop a series whose newest row is this much older than the newest row of any series "
        "(event time; `0`: never)",
    )
    gap_policy: Annotated[GapPolicy, BeforeValidator(_lower)] = env(
        "WINDOW_GAP_POLICY", "keep", "`keep` or `reindex` (regular grid, interpolated gaps)"
    )
    publish_layout: Annotated[PublishLayout, BeforeValidator(_lower)] = env(
        "PUBLISH_LAYOUT",
        "auto",
        "`inline` (each generation one file of every row), `segmented` (files of series "
        "segments, a generation writing only those holding a changed series) or `auto` "
        "(inline while the window holds one series, else segmented)",
    )
    series_per_segment: int = env(
        "SERIES_PER_SEGMENT",
        SERIES_PER_SEGMENT,
        "series per segment on average in segmented generations (the count is the smallest "
        "power of two that keeps them at most this many): fewer make each change cheaper to "
        "publish, more make fewer files",
        ge=1,
        le=1_000_000,
    )
    publish_interval_ms: int = env(
        "PUBLISH_INTERVAL_MS",
        20,
        "time between generations on average (a change after a quieter spell is published at "
        "once; faster changes are coalesced)",
        ge=1,
    )
    publish_burst: int = env(
        "PUBLISH_BURST",
        4,
        "generations that may follow each other sooner than `PUBLISH_INTERVAL_MS` after a "
        "quieter spell (events held up together then go out as they arrive); 1 makes the "
        "interval a minimum between any two",
        ge=1,
        le=1_000,
    )
    nice: int = env(
        "DAEMON_NICE",
        -5,
        "the daemon's nice value, set at start (below 0 needs `CAP_SYS_NICE`; without it the "
        "daemon keeps its inherited value and logs so)",
        ge=-20,
        le=19,
    )
    keep_generations: int = env(
        "SHM_KEEP_GENERATIONS",
        2,
        "generation files kept in `SHM_DIR` (older ones are unlinked; readers "
        "that mapped them keep them)",
        ge=1,
    )
    replay_rate: Finite = env("REPLAY_RATE", 10.0, "replay speed, events/s", ge=0.001)
    replay_path: Path = env(
        "REPLAY_PATH", DEFAULT_REPLAY_PATH, "the series replayed (default: the bundled sample)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        """Checks across variables, each raising :class:`ConfigError` naming one of them."""
        if self.source == "kafka" and not self.kafka_bootstrap_servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "required when DAEMON_SOURCE=kafka")
        if self.source == "replay" and self.kafka_partitions is not None:
            raise ConfigError("KAFKA_PARTITIONS", "applies to DAEMON_SOURCE=kafka only")
        if self.kafka_dlq_topic == self.kafka_topic:
            raise ConfigError("KAFKA_DLQ_TOPIC", "must differ from KAFKA_TOPIC")
        _pair("SNAPSHOT_BUCKET", self.snapshot_bucket, "SNAPSHOT_KEY", self.snapshot_key)
        _pair("MODEL_BUCKET", self.model_bucket, "MODEL_KEY", self.model_key)
        if self.s3 is None and (self.snapshot_bucket or self.model_bucket):
            needed_by = "SNAPSHOT_BUCKET" if self.snapshot_bucket else "MODEL_BUCKET"
            raise ConfigError("S3_ENDPOINT", f"required when {needed_by} is set")
        if self.model_path is not None and self.model_bucket is not None:
            raise ConfigError("MODEL_PATH", "set either MODEL_PATH or MODEL_BUCKET/MODEL_KEY")
        if self.model_path is not None:
            _check_model_path(self.model_path)
        _check_duration("WINDOW_DURATION_S", self.window_duration_s)
        _check_duration("SERIES_TTL_S", self.series_ttl_s)
        if self.window_rows is None and self.window_duration_s is None:
            raise ConfigError("WINDOW_ROWS", "WINDOW_ROWS or WINDOW_DURATION_S must be > 0")
        return self

    @property
    def window_duration_ns(self) -> int | None:
        """The duration bound in nanoseconds, or ``None``."""
        return _ns(self.window_duration_s)

    @property
    def series_ttl_ns(self) -> int | None:
        """The series TTL in nanoseconds, or ``None``."""
        return _ns(self.series_ttl_s)


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000_000)


def _check_duration(variable: str, seconds: float | None) -> None:
    """A duration that is unset or inside the range the nanosecond arithmetic handles."""
    if seconds is not None and not _MIN_DURATION_S <= seconds <= _MAX_DURATION_S:
        raise ConfigError(
            variable,
            f"must be 0 (unbounded) or between {_MIN_DURATION_S} and {_MAX_DURATION_S:.0f} "
            f"seconds (100 years), got {seconds!r}",
        )


def _pair(first: str, a: str | None, second: str, b: str | None) -> None:
    """Two variables that are set together or not at all."""
    if (a is None) != (b is None):
        missing, given = (second, first) if b is None else (first, second)
        raise ConfigError(missing, f"required when {given} is set")


def _check_model_path(path: Path) -> None:
    """A model path that exists must be a regular file (not a device, FIFO or directory); one
    that does not exist yet is polled for."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError("MODEL_PATH", f"{path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("MODEL_PATH", f"{path} is not a regular file")
