"""Settings shared by the baseline servers, read once by :meth:`BaselineConfig.from_env`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, ClassVar, Self

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints

from bench.baselines.errors import BaselineConfigError
from contract.defaults import SERIES_COLUMN, TOPIC
from contract.errors import ConfigError
from contract.settings import EnvSettings

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
    """What a baseline server needs.

    ``model_path`` (``MODEL_PATH``, required): the artifact, with its ``.sha256`` sidecar.
    ``window_file`` (``BASELINE_WINDOW_FILE``): an Arrow IPC file holding the initial window
    (the "preload" of the seed report; each process copies it into its own memory), or None
    to start empty. ``bootstrap_servers`` (``KAFKA_BOOTSTRAP_SERVERS``, comma-separated
    ``host:port``): empty means no Kafka consumer is started. ``topic`` (``KAFKA_TOPIC``) and
    ``window_rows`` (``WINDOW_ROWS``) as the daemon's.
    """

    model_path: File = Field(validation_alias="MODEL_PATH")
    window_file: File | None = Field(None, validation_alias="BASELINE_WINDOW_FILE")
    bootstrap_servers: Annotated[tuple[Server, ...], BeforeValidator(_servers)] = Field(
        (), validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    topic: str = Field(TOPIC, pattern=r"^[A-Za-z0-9._-]{1,249}$", validation_alias="KAFKA_TOPIC")
    window_rows: int = Field(4032, ge=1, validation_alias="WINDOW_ROWS")
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
