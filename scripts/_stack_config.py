"""Configuration of the local stack (see ``scripts.stack``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.errors import StackError

__all__ = ["ROOT", "ServiceStatus", "StackConfig"]

ROOT = Path(__file__).resolve().parents[1]

_PORT_VARS = ("STACK_KAFKA_PORT", "STACK_KAFKA_CONTROLLER_PORT", "STACK_S3_PORT")


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and which loopback ports and keys it uses.

    Environment variables (all optional): ``STACK_DIR`` (default ``<root>/.run/stack``),
    ``STACK_CACHE_DIR`` (default ``<root>/.cache``), ``STACK_KAFKA_PORT`` (19092),
    ``STACK_KAFKA_CONTROLLER_PORT`` (19093), ``STACK_S3_PORT`` (19000), ``STACK_S3_ACCESS_KEY``,
    ``STACK_S3_SECRET_KEY``, ``STACK_START_TIMEOUT_S`` (90), ``JAVA_HOME``.
    """

    state_dir: Path
    cache_dir: Path
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    s3_port: int = 19000
    s3_access_key: str = "stack-access-key"
    s3_secret_key: str = "stack-secret-key-0123456789"  # noqa: S105 - a loopback test server
    s3_region: str = "us-east-1"
    start_timeout_s: float = 90.0
    java_home: str | None = None

    def __post_init__(self) -> None:
        ports = (self.kafka_port, self.kafka_controller_port, self.s3_port)
        for name, port in zip(_PORT_VARS, ports, strict=True):
            if not 0 < port < 65536:
                raise StackError(f"{name}={port} is not a TCP port (1-65535)")
        if len(set(ports)) != len(ports):
            raise StackError(f"{', '.join(_PORT_VARS)} must differ, got {ports}")
        if len(self.s3_access_key) < 3 or len(self.s3_secret_key) < 8:
            raise StackError("STACK_S3_ACCESS_KEY needs 3+ and STACK_S3_SECRET_KEY 8+ characters")
        if self.start_timeout_s <= 0:
            raise StackError(f"STACK_START_TIMEOUT_S={self.start_timeout_s} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> StackConfig:
        """Build the config from ``environ``; keyword ``overrides`` win (used by the fixtures).

        Raises ``StackError`` naming the variable when a value is not valid.
        """
        values: dict[str, Any] = {
            "state_dir": Path(environ.get("STACK_DIR") or ROOT / ".run" / "stack"),
            "cache_dir": Path(environ.get("STACK_CACHE_DIR") or ROOT / ".cache"),
            "java_home": environ.get("JAVA_HOME") or None,
        }
        for name, key in zip(
            _PORT_VARS, ("kafka_port", "kafka_controller_port", "s3_port"), strict=True
        ):
            if environ.get(name):
                values[key] = _parse(name, environ[name], int)
        if environ.get("STACK_START_TIMEOUT_S"):
            values["start_timeout_s"] = _parse(
                "STACK_START_TIMEOUT_S", environ["STACK_START_TIMEOUT_S"], float
            )
        for name, key in (
            ("STACK_S3_ACCESS_KEY", "s3_access_key"),
            ("STACK_S3_SECRET_KEY", "s3_secret_key"),
        ):
            if environ.get(name):
                values[key] = environ[name]
        values.update(overrides)
        return cls(**values)


def _parse(name: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


@dataclass(frozen=True)
class ServiceStatus:
    """One server as ``status`` sees it."""

    name: str
    address: str
    pid: int | None
    ready: bool
