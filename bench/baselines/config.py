"""Settings shared by the baseline servers, read once by :meth:`BaselineConfig.from_env`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from bench.baselines.errors import BaselineConfigError
from contract.defaults import SERIES_COLUMN, TOPIC
from contract.errors import ConfigError
from contract.settings import EnvSettings, env

__all__ = ["BaselineConfig"]


def _file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    return path


def _servers(raw: object) -> object:
    return tuple(s for s in raw.split(",") if s) if isinstance(raw, str) else raw


File = Annotated[Path, AfterValidator(_file)]
Server = Annotated[str, StringConstraints(pattern=r"^[^\s:/]+:\d{1,5}$")]


class BaselineConfig(EnvSettings):
    """What a baseline server needs; each field's description says what its variable means
    (``docs/configuration.md`` lists them). ``BASELINE_WINDOW_FILE`` is the "preload" of the
    seed report; with it, the consumer starts at the end of the topic (:attr:`from_beginning`).
    """

    model_path: File = Field(
        validation_alias="MODEL_PATH",
        description="the model artifact, with its `<path>.sha256` sidecar",
    )
    window_file: File | None = env(
        "BASELINE_WINDOW_FILE",
        None,
        "Arrow IPC file of the initial window, copied into each process's memory; "
        "unset: start empty",
    )
    bootstrap_servers: Annotated[tuple[Server, ...], BeforeValidator(_servers)] = env(
        "KAFKA_BOOTSTRAP_SERVERS",
        (),
        "Kafka brokers, `host:port[,host:port…]`; unset: no consumer is started",
    )
    topic: str = env("KAFKA_TOPIC", TOPIC, "input topic", pattern=r"^[A-Za-z0-9._-]{1,249}$")
    window_rows: int = env("WINDOW_ROWS", 4032, "rows kept in the window", ge=1)
    column: ClassVar[str] = SERIES_COLUMN

    @property
    def from_beginning(self) -> bool:
        """Where the consumer starts: the beginning of the topic without a preload, its end
        after one (which already holds the history)."""
        return self.window_file is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Read the variables above; raise :class:`BaselineConfigError` naming a bad one."""
        try:
            return super().from_env(environ)
        except ConfigError as exc:
            raise BaselineConfigError(exc.variable, exc.problem) from None
