"""Run configuration from the environment (pydantic-settings), overridden by the Locust
options this package adds (``--weight-<mode>``, ``--shape``); and the load shapes.

Variables shared with the service keep its names (``MAX_ROWS``, ``MAX_BODY_BYTES``,
``MAX_INFERENCE_LENGTH``, ``S3_*``, ``KAFKA_*``): set them as on the server under test.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Self, TypeVar

from pydantic import Field, PlainValidator, ValidationError

from contract.defaults import SAMPLE_PATH
from contract.settings import EnvSettings, env_names
from locustfiles._errors import ConfigError
from locustfiles._payloads import Zone, parse_zone

MODES = ("cached", "synthetic", "real", "bad", "ingest", "series", "quantiles")
SHAPES = ("steady", "ramp", "spike")
_ZONES = "Z,naive,+00:00,+02:00,-05:00,+05:30,Europe/London,America/New_York"
_ORDERED = (  # (lower, upper) bounds, by variable
    ("LOCUST_ROWS_MIN", "LOCUST_ROWS_MAX"),
    ("LOCUST_ROWS_MAX", "MAX_ROWS"),
    ("LOCUST_WAIT_MIN_MS", "LOCUST_WAIT_MAX_MS"),
)
_WORDS = {  # problems in this package's words, by pydantic error type
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "string_pattern_mismatch": "must match {pattern}",
}
S = TypeVar("S", bound=EnvSettings)


def settings_from_env(
    cls: type[S],
    environ: Mapping[str, str],
    options: Mapping[str, tuple[str, object]] | None = None,
) -> S:
    """``cls`` from the non-blank variables of ``environ`` it reads, then from ``options``
    (``{variable: (option, value)}``). :class:`ConfigError` names the variable (or option),
    the problem and the value given."""
    known, options = env_names(cls), options or {}
    values: dict[str, Any] = {k: v.strip() for k, v in environ.items() if k in known and v.strip()}
    values.update({variable: value for variable, (_, value) in options.items()})
    try:
        return cls(**values)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
    ctx = error.get("ctx", {})
    if isinstance(ctx.get("error"), ConfigError):
        raise ctx["error"] from None
    variable = str(error["loc"][0]) if error["loc"] else "configuration"
    words = _WORDS.get(error["type"])
    if error["type"] == "greater_than_equal":
        kind = "an integer" if isinstance(ctx["ge"], int) else "a finite number"
        words = f"must be {kind} >= {ctx['ge']:g}"
    problem = words.format(**ctx) if words else error["msg"].removeprefix("Value error, ")
    name = options[variable][0] if variable in options else variable
    raise ConfigError(f"{name} {problem}, got {error['input']!r}") from None


def _zones(raw: object) -> tuple[Zone, ...]:
    try:
        zones = tuple(parse_zone(z) for z in str(raw).split(",") if z.strip())
    except ValueError as exc:
        raise ConfigError(f"LOCUST_TIMEZONES: {exc}") from None
    if not zones:
        raise ConfigError("LOCUST_TIMEZONES must name at least one zone")
    return zones


def _host_port(raw: object) -> str:
    if raw and not re.fullmatch(r"[^\s:/]+:\d{1,5}", str(raw)):
        raise ValueError("must be host:port")
    return str(raw)


def _servers(raw: object) -> tuple[str, ...]:
    return tuple(_host_port(s.strip()) for s in str(raw).split(",") if s.strip())


def _env(
    variable: str, default: object, meaning: str, doc_default: str | None = None, **constraints: Any
) -> Any:
    """A field read from ``variable``; ``doc_default`` is what the docs show as its default."""
    extra: dict[str, Any] | None = {"doc_default": doc_default} if doc_default is not None else None
    return Field(
        default,
        validation_alias=variable,
        description=meaning,
        json_schema_extra=extra,
        **constraints,
    )


Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class S3Location(NamedTuple):
    """Where ``real`` mode fetches its series (minio client arguments, bucket and key)."""

    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str
    bucket: str
    key: str


class LoadConfig(EnvSettings):
    """Everything the users read; ``docs/configuration.md`` lists the variables and
    ``docs/load-testing.md`` what the modes do with them."""

    weight_cached: Count = _env(
        "LOCUST_WEIGHT_CACHED", 4, "weight of the `cached` user (`--weight-cached` wins)"
    )
    weight_synthetic: Count = _env(
        "LOCUST_WEIGHT_SYNTHETIC", 2, "weight of the `synthetic` user (`--weight-synthetic` wins)"
    )
    weight_real: Count = _env(
        "LOCUST_WEIGHT_REAL", 2, "weight of the `real` user (`--weight-real` wins)"
    )
    weight_bad: Count = _env(
        "LOCUST_WEIGHT_BAD", 1, "weight of the `bad` user (`--weight-bad` wins)"
    )
    weight_ingest: Count = _env(
        "LOCUST_WEIGHT_INGEST",
        0,
        "weight of the `ingest` user (`--weight-ingest` wins); needs `KAFKA_BOOTSTRAP_SERVERS`",
    )
    weight_series: Count = _env(
        "LOCUST_WEIGHT_SERIES",
        0,
        "weight of the `series` user (`--weight-series` wins): forecasts of random series of "
        "the window, by `series_id`",
    )
    series_max: Positive = _env(
        "LOCUST_SERIES_MAX",
        10_000,
        "series: most ids the preflight reads from `GET /series` (the first ones in id "
        "order); each request picks one of them at random",
    )
    weight_quantiles: Count = _env(
        "LOCUST_WEIGHT_QUANTILES",
        1,
        "weight of the `quantiles` user (`--weight-quantiles` wins)",
    )
    shape: Annotated[str, PlainValidator(lambda s: str(s).strip().lower())] = _env(
        "LOCUST_SHAPE",
        "steady",
        "`steady`, `ramp` or `spike` (`--shape` wins); ramp and spike need a run time (`-t`)",
    )
    rows_min: Positive = _env(
        "LOCUST_ROWS_MIN", 336, "fewest history rows of a synthetic or real series"
    )
    rows_max: Positive = _env(
        "LOCUST_ROWS_MAX", 672, "most history rows of a synthetic or real series"
    )
    payloads_per_user: Positive = _env(
        "LOCUST_PAYLOADS_PER_USER",
        4,
        "series each synthetic or real user builds and encodes once, at its start, then "
        "re-sends with a new `inference_length` each time",
    )
    step_s: Positive | None = _env(
        "LOCUST_STEP_S",
        None,
        "step of the series, seconds; when set, the preflight checks it against the model",
        doc_default="the model's step",
    )
    zones: Annotated[tuple[Zone, ...], PlainValidator(_zones)] = _env(
        "LOCUST_TIMEZONES",
        _zones(_ZONES),
        "zones of the synthetic series, comma-separated: `Z`, `naive`, fixed offsets, IANA names",
        doc_default=f"`{_ZONES}`",
    )
    column: str = _env(
        "LOCUST_COLUMN",
        "demand_mw",
        "the value column of every payload",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$",
    )
    max_inference_length: Positive = _env(
        "MAX_INFERENCE_LENGTH",
        48,
        "the server's ceiling of `inference_length` (same name): set it as on the server",
    )
    max_rows: Positive = _env(
        "MAX_ROWS", 10_000, "the server's row limit (same name): set it as on the server"
    )
    max_body_bytes: int = _env(
        "MAX_BODY_BYTES",
        1_048_576,
        "the server's body limit (same name): set it as on the server",
        ge=2,
    )
    wait_min_ms: Count = _env(
        "LOCUST_WAIT_MIN_MS", 0, "shortest think time between two requests of a user"
    )
    wait_max_ms: Count = _env(
        "LOCUST_WAIT_MAX_MS", 0, "longest think time between two requests of a user"
    )
    seed: Count | None = _env(
        "LOCUST_SEED", None, "seeds every user's generator (reproducible payloads)"
    )
    series_path: Path = _env(
        "LOCUST_SERIES_PATH", SAMPLE_PATH, "parquet file of the real series when S3 is not used"
    )
    series_bucket: str = _env(
        "LOCUST_SERIES_BUCKET",
        "",
        "bucket of the real series in S3 (with `S3_ENDPOINT`)",
        doc_default="`SNAPSHOT_BUCKET`",
    )
    series_key: str = _env(
        "LOCUST_SERIES_KEY",
        "",
        "key of the real series in S3 (with `S3_ENDPOINT`)",
        doc_default="`SNAPSHOT_KEY`",
    )
    snapshot_bucket: str = _env(
        "SNAPSHOT_BUCKET",
        "",
        "the daemon's snapshot bucket: the real series when `LOCUST_SERIES_BUCKET` and "
        "`LOCUST_SERIES_KEY` are unset",
    )
    snapshot_key: str = _env(
        "SNAPSHOT_KEY", "", "the daemon's snapshot key (see `SNAPSHOT_BUCKET`)"
    )
    s3_endpoint: Annotated[str, PlainValidator(_host_port)] = _env(
        "S3_ENDPOINT",
        "",
        "object store of the real series, `host:port`; unset: the real user reads "
        "`LOCUST_SERIES_PATH`",
    )
    s3_access_key: str = _env("S3_ACCESS_KEY", "", "access key of the object store")
    s3_secret_key: str = _env("S3_SECRET_KEY", "", "secret key of the object store")
    s3_secure: bool = _env("S3_SECURE", False, "`true` for HTTPS to the object store")
    s3_region: str = _env("S3_REGION", "us-east-1", "signing region of the object store")
    kafka_servers: Annotated[tuple[str, ...], PlainValidator(_servers)] = _env(
        "KAFKA_BOOTSTRAP_SERVERS",
        (),
        "Kafka brokers the ingest user produces to, `host:port[,host:port…]`",
    )
    kafka_topic: str = _env("KAFKA_TOPIC", "demand", "topic the ingest user produces to")
    ingest_timeout_ms: Positive = _env(
        "LOCUST_INGEST_TIMEOUT_MS",
        10_000,
        "ingest: time for an event to show in `GET /cache` before it counts as failed",
    )
    ingest_poll_ms: Positive = _env(
        "LOCUST_INGEST_POLL_MS", 20, "ingest: interval between two polls of `GET /cache`"
    )
    ready_timeout_s: float = _env(
        "LOCUST_READY_TIMEOUT_S",
        30.0,
        "how long the preflight waits for `/readyz` before the run stops",
        ge=0.0,
        allow_inf_nan=False,
    )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], options: object = None, only: Iterable[str] = ()
    ) -> Self:
        """The configuration from ``environ``; ``weight_<mode>`` and ``shape`` of ``options``
        (Locust's parsed options, also edited in the web UI) win over it, and the modes in
        ``only`` (user classes named on the command line) run alone, each with a weight of
        at least 1. :class:`ConfigError` names the variable or option."""
        given = {f"LOCUST_WEIGHT_{m.upper()}": (f"--weight-{m}", f"weight_{m}") for m in MODES}
        given["LOCUST_SHAPE"] = ("--shape", "shape")
        values = {k: (name, getattr(options, attr, None)) for k, (name, attr) in given.items()}
        config = settings_from_env(
            cls, environ, {k: v for k, v in values.items() if v[1] not in (None, "")}
        )
        if only := set(only):
            update = {f"weight_{m}": max(1, config.weight(m)) if m in only else 0 for m in MODES}
            config = config.model_copy(update=update)
        return config.checked()

    def checked(self) -> Self:
        """Checks across variables (the S3 pair included); the messages name them."""
        if not any(w for _, w in self.weights):
            raise ConfigError("every LOCUST_WEIGHT_<MODE> (--weight-<mode>) is 0: nothing to run")
        if self.shape not in SHAPES:
            raise ConfigError(
                f"LOCUST_SHAPE (--shape) must be one of {', '.join(SHAPES)}, got {self.shape!r}"
            )
        fields = env_names(type(self))
        for low, high in _ORDERED:
            if (a := getattr(self, fields[low])) > (b := getattr(self, fields[high])):
                raise ConfigError(f"{low} ({a}) exceeds {high} ({b})")
        if self.weight_ingest and not self.kafka_servers:
            raise ConfigError(
                "KAFKA_BOOTSTRAP_SERVERS must be set when the ingest user has a weight"
                f" (LOCUST_WEIGHT_INGEST / --weight-ingest = {self.weight_ingest})"
            )
        _ = self.s3
        return self

    def weight(self, mode: str) -> int:
        return int(getattr(self, f"weight_{mode}"))

    @property
    def weights(self) -> tuple[tuple[str, int], ...]:
        return tuple((mode, self.weight(mode)) for mode in MODES)

    @property
    def s3(self) -> S3Location | None:
        """The object of the real series when ``S3_ENDPOINT`` is set: the bucket and key of
        ``LOCUST_SERIES_BUCKET``/``_KEY``, or else of ``SNAPSHOT_BUCKET``/``_KEY``."""
        pair = ("LOCUST_SERIES_BUCKET", self.series_bucket), ("LOCUST_SERIES_KEY", self.series_key)
        if not (self.series_bucket or self.series_key):
            pair = ("SNAPSHOT_BUCKET", self.snapshot_bucket), ("SNAPSHOT_KEY", self.snapshot_key)
        (bucket_var, bucket), (key_var, key) = pair
        if not self.s3_endpoint or not (bucket or key):
            return None
        if not (bucket and key):
            missing, other = (key_var, bucket_var) if bucket else (bucket_var, key_var)
            raise ConfigError(f"{missing} must be set together with {other}")
        client = (self.s3_endpoint, self.s3_access_key, self.s3_secret_key, self.s3_secure)
        return S3Location(*client, self.s3_region, bucket, key)


def target(
    shape: str, elapsed_s: float, users: int, spawn_rate: float, run_time_s: float | None
) -> tuple[int, float] | None:
    """``(user count, spawn rate)`` of ``shape`` at ``elapsed_s``, None when the run is over.

    ``users``, ``spawn_rate`` and ``run_time_s`` are Locust's ``-u``, ``-r`` and ``-t``.
    steady holds ``users``; ramp climbs to them in five equal stages; spike holds a quarter
    of them and jumps to all (spawned within a second) for the middle fifth of the run.
    """
    if run_time_s is not None and elapsed_s >= run_time_s:
        return None
    if shape == "steady":
        return users, spawn_rate
    if run_time_s is None:
        raise ValueError(f"the {shape} shape needs a run time")
    fraction = elapsed_s / run_time_s
    if shape == "ramp":
        return max(1, math.ceil(users * (min(4, int(fraction * 5)) + 1) / 5)), spawn_rate
    if shape == "spike":
        share = 1.0 if 0.4 <= fraction < 0.6 else 0.25
        return max(1, math.ceil(users * share)), max(spawn_rate, float(users))
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")
