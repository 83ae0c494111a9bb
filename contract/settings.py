"""The one environment parser (pydantic-settings) and the settings both processes share.

A settings class derives from :class:`EnvSettings` and declares each field with the name of
its environment variable as ``validation_alias``. :meth:`EnvSettings.from_env` reads exactly
the mapping it is given (the entry points pass ``os.environ``; tests pass a dict), treats an
empty or blank variable as unset, and turns every validation failure into one
:class:`~contract.errors.ConfigError` naming the variable. A check across variables raises
:class:`ConfigError` itself from a ``model_validator``. Settings are immutable: assigning to
a field raises ``AttributeError``, as with a frozen dataclass.

A field typed ``OtherSettings | None`` (another :class:`EnvSettings` class) is a group of
variables of its own: when the variable named as the field's ``validation_alias`` is set,
the field is ``OtherSettings.from_env`` of the same mapping (so the group's errors name its
variables); otherwise it keeps its default (``None``).

:class:`SharedSettings` holds what the daemon and the web workers must agree on: the shm
directory, the age bound of the data, the log level, and for a shard the Kafka partitions it
owns and the topic's partition count.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, Self, get_args

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contract import defaults
from contract.errors import ConfigError
from contract.partitions import MAX_PARTITIONS, format_partitions, parse_partitions

__all__ = [
    "EnvSettings",
    "LogLevel",
    "PartitionSet",
    "SharedSettings",
    "env",
    "env_name",
    "env_names",
    "nested_settings",
]

LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
]

# A partition set as text (``0-5``, ``0,2,4-7``; contract.partitions) parsed before validation.
PartitionSet = Annotated[
    frozenset[Annotated[int, Field(ge=0, lt=MAX_PARTITIONS)]],
    BeforeValidator(lambda v: parse_partitions(v) if isinstance(v, str) else v),
    Field(min_length=1),
]


def env(variable: str, default: Any, description: str, **constraints: Any) -> Any:
    """A settings field read from ``variable``: ``Field`` with the alias, the description
    the configuration tables print, and pydantic's constraints (``ge=1``, ...)."""
    return Field(default, validation_alias=variable, description=description, **constraints)


def env_name(info: FieldInfo, field_name: str) -> str:
    """The environment variable a field is read from (its first alias)."""
    alias = info.validation_alias
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return field_name.upper()


def nested_settings(info: FieldInfo) -> type[EnvSettings] | None:
    """The settings class of a field typed ``OtherSettings | None``, else None."""
    for candidate in (info.annotation, *get_args(info.annotation)):
        if isinstance(candidate, type) and issubclass(candidate, EnvSettings):
            return candidate
    return None


def env_names(cls: type[EnvSettings]) -> dict[str, str]:
    """``{environment variable: field name}`` of a settings class (docs tables use it)."""
    return {env_name(info, name): name for name, info in cls.model_fields.items()}


class EnvSettings(BaseSettings):
    """Base of every settings class of the project (see the module docstring)."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", validate_default=False, validate_by_name=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the mapping given to :meth:`from_env`: no hidden reads of the process."""
        return (init_settings,)

    @classmethod
    def env_values(cls, environ: Mapping[str, str]) -> dict[str, Any]:
        """The values ``environ`` gives, by variable name: the non-blank variables this class
        reads, stripped, each group's already built (raise :class:`ConfigError`)."""
        known = env_names(cls)
        values: dict[str, Any] = {
            k: v.strip() for k, v in environ.items() if k in known and v.strip()
        }
        for name, info in cls.model_fields.items():
            group = nested_settings(info)
            switch = env_name(info, name)
            if group is not None and switch in values:
                values[switch] = group.from_env(environ)
        return values

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Build and validate the settings from ``environ``; raise :class:`ConfigError`."""
        values = cls.env_values(environ)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise _config_error(exc, env_names(cls)) from None

    @classmethod
    def from_fields(cls, **fields: Any) -> Self:
        """Build and validate the settings from values given by field name (a tool with a
        configuration of its own passes what it read); raise :class:`ConfigError` naming the
        variable, as :meth:`from_env` does."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise _config_error(exc, env_names(cls)) from None

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable; cannot delete {name!r}")


def _config_error(exc: ValidationError, known: Mapping[str, str]) -> ConfigError:
    error = exc.errors(include_url=False)[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    loc = error["loc"]
    by_field = {field: variable for variable, field in known.items()}
    first = str(loc[0]) if loc else ""
    variable = first if first in known else by_field.get(first, "configuration")
    given = error.get("input")
    problem = error["msg"].removeprefix("Value error, ")
    if isinstance(given, str):
        problem = f"{problem}, got {given!r}"
    return ConfigError(variable, problem)


class SharedSettings(EnvSettings):
    """What the daemon, the web workers and the health probe agree on."""

    shm_dir: Path = env(
        "SHM_DIR",
        defaults.SHM_DIR,
        "directory of the published window, on a memory-backed filesystem, "
        "shared by the daemon and every web worker",
    )
    max_data_age_ms: int = env(
        "MAX_DATA_AGE_MS",
        defaults.MAX_DATA_AGE_MS,
        f"staleness bound (at least {defaults.MIN_MAX_DATA_AGE_MS}): `/readyz` "
        "answers 503 `stale` past it, and the daemon's health probe fails when its heartbeat is "
        "older",
        ge=defaults.MIN_MAX_DATA_AGE_MS,
    )
    log_level: LogLevel = env("LOG_LEVEL", "INFO", "level of the JSON log lines")
    kafka_partitions: PartitionSet | None = env(
        "KAFKA_PARTITIONS",
        None,
        "the Kafka partitions this pod owns, e.g. `0-5` or `0,2,4-7` (a shard: its daemon reads "
        "only these, its web workers serve only their series); unset: every partition",
    )
    kafka_partition_count: int | None = env(
        "KAFKA_PARTITION_COUNT",
        None,
        "the topic's partition count, which maps a series to its partition (murmur2 of the "
        "key modulo the count); the daemon reports a topic with another count as an error",
        ge=1,
        le=MAX_PARTITIONS,
    )

    @model_validator(mode="after")
    def _partitions_within_count(self) -> Self:
        count, owned = self.kafka_partition_count, self.kafka_partitions
        if count is not None and owned and max(owned) >= count:
            beyond = format_partitions(p for p in owned if p >= count)
            raise ConfigError(
                "KAFKA_PARTITIONS",
                f"includes {beyond}, but KAFKA_PARTITION_COUNT is {count} (partitions "
                f"0-{count - 1})",
            )
        return self
