"""Run configuration: a frozen dataclass built once from the environment, then overridden by
the Locust command-line options this package adds (``--weight-cached 3 --shape ramp``).

Variables shared with the service keep the service's names (``MAX_ROWS``, ``MAX_BODY_BYTES``,
``MAX_INFERENCE_LENGTH``, ``S3_*``, ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC``): point the
load test at the same values as the server it tests. The SLO gates are read separately
(:mod:`locustfiles._gates`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from locustfiles._series import UTC_ZONE, Zone, parse_zone
from locustfiles._shapes import SHAPES
from locustfiles.errors import ConfigError

__all__ = ["MODES", "SAMPLE_SERIES", "LoadConfig", "S3Location"]

MODES = ("cached", "synthetic", "real", "bad", "ingest")
SAMPLE_SERIES = (
    Path(__file__).resolve().parent.parent / "data" / "electricity_demand_halfhourly.parquet"
)
_DEFAULT_WEIGHTS = {"cached": 4, "synthetic": 2, "real": 2, "bad": 1, "ingest": 0}
_DEFAULT_ZONES = "Z,naive,+00:00,+02:00,-05:00,+05:30,Europe/London,America/New_York"
_NAME = re.compile(r"\A[A-Za-z_][A-Za-z0-9_]{0,62}\Z")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _weight(env: Mapping[str, str], mode: str, default: int, options: object) -> int:
    given = getattr(options, f"weight_{mode}", None)
    if given is None or given == "":
        return _int(env, f"LOCUST_WEIGHT_{mode.upper()}", default, minimum=0)
    # The web UI hands options over as strings.
    try:
        value = int(given)
    except (TypeError, ValueError):
        value = -1
    if value < 0:
        raise ConfigError(f"--weight-{mode} must be an integer >= 0, got {given!r}")
    return value


def _opt_int(env: Mapping[str, str], name: str, *, minimum: int) -> int | None:
    return _int(env, name, 0, minimum=minimum) if env.get(name, "").strip() else None


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name} must be a finite number >= {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where ``real`` mode fetches its series (minio client, keyword arguments)."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Everything the users read. See :meth:`from_env` for the variables."""

    weights: tuple[tuple[str, int], ...] = tuple(_DEFAULT_WEIGHTS.items())
    shape: str = "steady"
    rows_min: int = 336
    rows_max: int = 672
    step_s: int | None = None
    zones: tuple[Zone, ...] = (UTC_ZONE,)
    column: str = "demand_mw"
    max_inference_length: int = 48
    max_rows: int = 10_000
    max_body_bytes: int = 1_048_576
    wait_min_ms: int = 0
    wait_max_ms: int = 0
    seed: int | None = None
    series_path: Path = SAMPLE_SERIES
    s3: S3Location | None = None
    kafka_bootstrap_servers: tuple[str, ...] = ()
    kafka_topic: str = "demand"
    ingest_timeout_ms: int = 10_000
    ingest_poll_ms: int = 20
    ready_timeout_s: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], options: object = None) -> LoadConfig:
        """Read ``LOCUST_WEIGHT_<MODE>`` (modes: cached, synthetic, real, bad, ingest),
        ``LOCUST_SHAPE``, ``LOCUST_ROWS_MIN``/``LOCUST_ROWS_MAX`` (history rows of series
        payloads), ``LOCUST_STEP_S`` (series step; unset = the model's, asked from the
        server), ``LOCUST_TIMEZONES`` (comma list: Z, naive, +hh:mm, IANA names),
        ``LOCUST_COLUMN``, ``LOCUST_WAIT_MIN_MS``/``LOCUST_WAIT_MAX_MS`` (think time),
        ``LOCUST_SEED``, ``LOCUST_SERIES_PATH``, ``LOCUST_SERIES_BUCKET``/``LOCUST_SERIES_KEY``
        (default ``SNAPSHOT_BUCKET``/``SNAPSHOT_KEY``) with ``S3_ENDPOINT``,
        ``S3_ACCESS_KEY``, ``S3_SECRET_KEY``, ``S3_SECURE``, ``S3_REGION``,
        ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC``, ``LOCUST_INGEST_TIMEOUT_MS``,
        ``LOCUST_INGEST_POLL_MS``, ``LOCUST_READY_TIMEOUT_S``, and the server's
        ``MAX_ROWS``, ``MAX_BODY_BYTES``, ``MAX_INFERENCE_LENGTH``.

        ``options`` (Locust's parsed options) may carry ``weight_<mode>`` and ``shape``; those
        given on the command line or in the web UI win over the environment. Raises
        :class:`ConfigError` naming the variable or option.
        """
        env = {k: v for k, v in environ.items() if v.strip()}
        weights = tuple(
            (mode, _weight(env, mode, default, options))
            for mode, default in _DEFAULT_WEIGHTS.items()
        )
        shape = getattr(options, "shape", None) or env.get("LOCUST_SHAPE", "steady")
        zones_raw = env.get("LOCUST_TIMEZONES", _DEFAULT_ZONES)
        zones: list[Zone] = []
        for item in zones_raw.split(","):
            if not item.strip():
                continue
            try:
                zones.append(parse_zone(item))
            except ValueError as exc:
                raise ConfigError(f"LOCUST_TIMEZONES: {exc}") from None
        if not zones:
            raise ConfigError("LOCUST_TIMEZONES must name at least one zone")
        column = env.get("LOCUST_COLUMN", "demand_mw").strip()
        if not _NAME.match(column):
            raise ConfigError(f"LOCUST_COLUMN must be a column name, got {column!r}")
        servers = tuple(
            s.strip() for s in env.get("KAFKA_BOOTSTRAP_SERVERS", "").split(",") if s.strip()
        )
        for server in servers:
            if not re.fullmatch(r"[^\s:/]+:\d{1,5}", server):
                raise ConfigError(f"KAFKA_BOOTSTRAP_SERVERS: {server!r} is not host:port")
        config = cls(
            weights=weights,
            shape=str(shape).strip().lower(),
            rows_min=_int(env, "LOCUST_ROWS_MIN", 336, minimum=1),
            rows_max=_int(env, "LOCUST_ROWS_MAX", 672, minimum=1),
            step_s=_opt_int(env, "LOCUST_STEP_S", minimum=1),
            zones=tuple(zones),
            column=column,
            max_inference_length=_int(env, "MAX_INFERENCE_LENGTH", 48, minimum=1),
            max_rows=_int(env, "MAX_ROWS", 10_000, minimum=1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, minimum=2),
            wait_min_ms=_int(env, "LOCUST_WAIT_MIN_MS", 0, minimum=0),
            wait_max_ms=_int(env, "LOCUST_WAIT_MAX_MS", 0, minimum=0),
            seed=_opt_int(env, "LOCUST_SEED", minimum=0),
            series_path=Path(env.get("LOCUST_SERIES_PATH", str(SAMPLE_SERIES))),
            s3=_s3(env),
            kafka_bootstrap_servers=servers,
            kafka_topic=env.get("KAFKA_TOPIC", "demand").strip(),
            ingest_timeout_ms=_int(env, "LOCUST_INGEST_TIMEOUT_MS", 10_000, minimum=1),
            ingest_poll_ms=_int(env, "LOCUST_INGEST_POLL_MS", 20, minimum=1),
            ready_timeout_s=_float(env, "LOCUST_READY_TIMEOUT_S", 30.0, minimum=0.0),
        )
        return config.checked()

    def checked(self) -> LoadConfig:
        """Cross-field checks; messages name the variables (and options)."""
        if not any(w > 0 for _, w in self.weights):
            raise ConfigError("every LOCUST_WEIGHT_<MODE> (--weight-<mode>) is 0: nothing to run")
        if self.shape not in SHAPES:
            raise ConfigError(
                f"LOCUST_SHAPE (--shape) must be one of {', '.join(SHAPES)}, got {self.shape!r}"
            )
        if self.rows_min > self.rows_max:
            raise ConfigError(
                f"LOCUST_ROWS_MIN ({self.rows_min}) exceeds LOCUST_ROWS_MAX ({self.rows_max})"
            )
        if self.rows_max > self.max_rows:
            raise ConfigError(
                f"LOCUST_ROWS_MAX ({self.rows_max}) exceeds MAX_ROWS ({self.max_rows})"
            )
        if self.wait_min_ms > self.wait_max_ms:
            raise ConfigError(
                f"LOCUST_WAIT_MIN_MS ({self.wait_min_ms}) exceeds "
                f"LOCUST_WAIT_MAX_MS ({self.wait_max_ms})"
            )
        if self.weight("ingest") > 0 and not self.kafka_bootstrap_servers:
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS must be set when the ingest user has a weight"
                f" (LOCUST_WEIGHT_INGEST / --weight-ingest = {self.weight('ingest')})"
            )
        return self

    def weight(self, mode: str) -> int:
        return dict(self.weights)[mode]


def _s3(env: Mapping[str, str]) -> S3Location | None:
    endpoint = env.get("S3_ENDPOINT", "").strip()
    own = "LOCUST_SERIES_BUCKET" in env or "LOCUST_SERIES_KEY" in env
    bucket_var, key_var = (
        ("LOCUST_SERIES_BUCKET", "LOCUST_SERIES_KEY")
        if own
        else ("SNAPSHOT_BUCKET", "SNAPSHOT_KEY")
    )
    bucket = env.get(bucket_var, "").strip()
    key = env.get(key_var, "").strip()
    if not endpoint or not (bucket or key):
        return None
    if not bucket:
        raise ConfigError(f"{bucket_var} must be set together with {key_var}")
    if not key:
        raise ConfigError(f"{key_var} must be set together with {bucket_var}")
    if "/" in endpoint or not re.fullmatch(r"[^\s:]+:\d{1,5}", endpoint):
        raise ConfigError(f"S3_ENDPOINT must be host:port, got {endpoint!r}")
    return S3Location(
        endpoint=endpoint,
        access_key=env.get("S3_ACCESS_KEY", ""),
        secret_key=env.get("S3_SECRET_KEY", ""),
        secure=_bool(env, "S3_SECURE", False),
        region=env.get("S3_REGION", "us-east-1").strip(),
        bucket=bucket,
        key=key,
    )
