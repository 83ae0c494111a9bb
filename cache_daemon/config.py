"""Daemon configuration: one frozen dataclass, built once from the environment.

``os.environ`` is read only by the entry point, which passes it to :meth:`DaemonConfig.from_env`.
Every malformed or contradictory variable raises :class:`~cache_daemon.errors.ConfigError`
naming it.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cache_daemon.errors import ConfigError

__all__ = ["DEFAULT_REPLAY_PATH", "DaemonConfig", "S3Config"]

SourceKind = Literal["kafka", "replay"]
GapPolicy = Literal["keep", "reindex"]

# The shared-memory mount both containers see; the directory itself is 0750 (see shm).
DEFAULT_SHM_DIR = "/dev/shm/shm-forecast"  # noqa: S108
DEFAULT_REPLAY_PATH = (
    Path(__file__).resolve().parent.parent / "data" / "electricity_demand_halfhourly.parquet"
)
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
# A window shorter than a millisecond holds nothing; one longer than a century overflows the
# nanosecond arithmetic.
_MIN_DURATION_S = 0.001
_MAX_DURATION_S = 100 * 365.25 * 86400


@dataclass(frozen=True, slots=True)
class S3Config:
    """Connection settings for the S3-compatible object store."""

    endpoint: str
    access_key: str
    secret_key: str = ""
    secure: bool = False
    region: str = "us-east-1"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Everything the daemon needs to know, validated.

    ``window_rows`` / ``window_duration_s``: ``None`` means "not bounded by that measure"; at
    least one of the two is set.
    """

    shm_dir: Path = Path(DEFAULT_SHM_DIR)
    source: SourceKind = "replay"
    kafka_bootstrap_servers: tuple[str, ...] = ()
    kafka_topic: str = "demand"
    kafka_dlq_topic: str = "demand.dlq"
    s3: S3Config | None = None
    snapshot_bucket: str | None = None
    snapshot_key: str | None = None
    model_bucket: str | None = None
    model_key: str | None = None
    model_path: Path | None = None
    model_poll_interval_s: float = 30.0
    columns: tuple[str, ...] = ("demand_mw",)
    window_rows: int | None = 4032
    window_duration_s: float | None = None
    gap_policy: GapPolicy = "keep"
    publish_interval_ms: int = 50
    keep_generations: int = 2
    max_data_age_ms: int = 10_000
    replay_rate: float = 10.0
    replay_path: Path = DEFAULT_REPLAY_PATH
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DaemonConfig:
        """Build and validate the configuration from ``environ`` (normally ``os.environ``).

        An empty variable counts as unset.
        """
        env = {k: v.strip() for k, v in environ.items() if v.strip()}

        servers, source = _source_from_env(env)
        topic = env.get("KAFKA_TOPIC", "demand")
        if not _TOPIC.fullmatch(topic):
            raise ConfigError("KAFKA_TOPIC", f"{topic!r} is not a valid topic name")
        dlq = env.get("KAFKA_DLQ_TOPIC", f"{topic}.dlq")
        if not _TOPIC.fullmatch(dlq) or dlq == topic:
            raise ConfigError("KAFKA_DLQ_TOPIC", f"{dlq!r} is not a valid, distinct topic name")

        s3 = _s3_from_env(env)
        snapshot_bucket, snapshot_key = _pair(env, "SNAPSHOT_BUCKET", "SNAPSHOT_KEY")
        model_bucket, model_key = _pair(env, "MODEL_BUCKET", "MODEL_KEY")
        for name, bucket in (("SNAPSHOT_BUCKET", snapshot_bucket), ("MODEL_BUCKET", model_bucket)):
            if bucket is not None and not _BUCKET.fullmatch(bucket):
                raise ConfigError(name, f"{bucket!r} is not a valid S3 bucket name")
        if (snapshot_bucket or model_bucket) and s3 is None:
            name = "SNAPSHOT_BUCKET" if snapshot_bucket else "MODEL_BUCKET"
            raise ConfigError("S3_ENDPOINT", f"required when {name} is set")
        model_path = Path(env["MODEL_PATH"]) if "MODEL_PATH" in env else None
        if model_path is not None and model_bucket is not None:
            raise ConfigError("MODEL_PATH", "set either MODEL_PATH or MODEL_BUCKET/MODEL_KEY")
        if model_path is not None:
            _check_model_path(model_path)

        columns = _columns_from_env(env)

        rows = _int(env, "WINDOW_ROWS", 4032, minimum=0) or None
        duration = _float(env, "WINDOW_DURATION_S", 0.0, minimum=0.0) or None
        if duration is not None and not _MIN_DURATION_S <= duration <= _MAX_DURATION_S:
            raise ConfigError(
                "WINDOW_DURATION_S",
                f"must be 0 (unbounded) or between {_MIN_DURATION_S} and {_MAX_DURATION_S:.0f} "
                f"seconds (100 years), got {env['WINDOW_DURATION_S']!r}",
            )
        if rows is None and duration is None:
            raise ConfigError("WINDOW_ROWS", "WINDOW_ROWS or WINDOW_DURATION_S must be > 0")
        gap = env.get("WINDOW_GAP_POLICY", "keep").lower()
        if gap not in ("keep", "reindex"):
            raise ConfigError("WINDOW_GAP_POLICY", f"must be 'keep' or 'reindex', got {gap!r}")
        level = env.get("LOG_LEVEL", "INFO").upper()
        if level not in _LOG_LEVELS:
            raise ConfigError("LOG_LEVEL", f"must be one of {', '.join(_LOG_LEVELS)}")

        return cls(
            shm_dir=Path(env.get("SHM_DIR", DEFAULT_SHM_DIR)),
            source=source,
            kafka_bootstrap_servers=servers,
            kafka_topic=topic,
            kafka_dlq_topic=dlq,
            s3=s3,
            snapshot_bucket=snapshot_bucket,
            snapshot_key=snapshot_key,
            model_bucket=model_bucket,
            model_key=model_key,
            model_path=model_path,
            model_poll_interval_s=_float(env, "MODEL_POLL_INTERVAL_S", 30.0, minimum=0.1),
            columns=columns,
            window_rows=rows,
            window_duration_s=duration,
            gap_policy="reindex" if gap == "reindex" else "keep",
            publish_interval_ms=_int(env, "PUBLISH_INTERVAL_MS", 50, minimum=1),
            keep_generations=_int(env, "SHM_KEEP_GENERATIONS", 2, minimum=1),
            max_data_age_ms=_int(env, "MAX_DATA_AGE_MS", 10_000, minimum=100),
            replay_rate=_float(env, "REPLAY_RATE", 10.0, minimum=0.001),
            replay_path=Path(env.get("REPLAY_PATH", str(DEFAULT_REPLAY_PATH))),
            log_level=level,
        )

    @property
    def window_duration_ns(self) -> int | None:
        """The duration bound in nanoseconds, or ``None``."""
        if self.window_duration_s is None:
            return None
        return int(self.window_duration_s * 1_000_000_000)


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


def _source_from_env(env: Mapping[str, str]) -> tuple[tuple[str, ...], SourceKind]:
    raw = env.get("KAFKA_BOOTSTRAP_SERVERS", "")
    servers = tuple(s.strip() for s in raw.split(",") if s.strip())
    for server in servers:
        if not re.fullmatch(r"[^\s:/]+:\d{1,5}", server):
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", f"{server!r} is not host:port")
    source_raw = env.get("DAEMON_SOURCE", "kafka" if servers else "replay").lower()
    if source_raw not in ("kafka", "replay"):
        raise ConfigError("DAEMON_SOURCE", f"must be 'kafka' or 'replay', got {source_raw!r}")
    source: SourceKind = "kafka" if source_raw == "kafka" else "replay"
    if source == "kafka" and not servers:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS", "required when DAEMON_SOURCE=kafka")
    return servers, source


def _columns_from_env(env: Mapping[str, str]) -> tuple[str, ...]:
    columns = tuple(c.strip() for c in env.get("SERIES_COLUMNS", "demand_mw").split(","))
    for column in columns:
        if not _COLUMN.fullmatch(column) or column == "time":
            raise ConfigError("SERIES_COLUMNS", f"{column!r} is not a valid column name")
    if len(set(columns)) != len(columns):
        raise ConfigError("SERIES_COLUMNS", "column names repeat")
    return columns


def _s3_from_env(env: Mapping[str, str]) -> S3Config | None:
    endpoint = env.get("S3_ENDPOINT")
    if endpoint is None:
        return None
    if "://" in endpoint or not re.fullmatch(r"[^\s:/]+(:\d{1,5})?", endpoint):
        raise ConfigError("S3_ENDPOINT", f"{endpoint!r} must be host:port (no scheme)")
    if "S3_ACCESS_KEY" not in env:
        raise ConfigError("S3_ACCESS_KEY", "required when S3_ENDPOINT is set")
    return S3Config(
        endpoint=endpoint,
        access_key=env["S3_ACCESS_KEY"],
        secret_key=env.get("S3_SECRET_KEY", ""),
        secure=_bool(env, "S3_SECURE", default=False),
        region=env.get("S3_REGION", "us-east-1"),
    )


def _pair(env: Mapping[str, str], first: str, second: str) -> tuple[str | None, str | None]:
    a, b = env.get(first), env.get(second)
    if (a is None) != (b is None):
        missing = second if b is None else first
        raise ConfigError(missing, f"required when {first if b is None else second} is set")
    return a, b


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(name, f"must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(name, f"must be a finite number >= {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, f"must be true or false, got {raw!r}")
