"""Settings shared by the baseline servers, built once by :meth:`BaselineConfig.from_env`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.baselines.errors import BaselineConfigError

__all__ = ["BaselineConfig"]

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SERVER = re.compile(r"^[^\s:/]+:\d{1,5}$")


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """What a baseline server needs.

    ``window_file``: an Arrow IPC file holding the initial window (the "preload" of the seed
    report; each process copies it into its own memory), or None to start empty.
    ``bootstrap_servers``: empty means no Kafka consumer is started.
    ``from_beginning``: where the consumer starts, the beginning of the topic (no preload)
    or its end (after a preload, which already holds the history).
    """

    model_path: Path
    window_file: Path | None = None
    bootstrap_servers: tuple[str, ...] = ()
    topic: str = "demand"
    window_rows: int = 4032
    column: str = "demand_mw"

    @property
    def from_beginning(self) -> bool:
        return self.window_file is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BaselineConfig:
        """Read ``MODEL_PATH`` (required; the artifact with its ``.sha256`` sidecar),
        ``BASELINE_WINDOW_FILE``, ``KAFKA_BOOTSTRAP_SERVERS``, ``KAFKA_TOPIC`` and
        ``WINDOW_ROWS``; raise :class:`BaselineConfigError` naming a bad variable."""
        env = {k: v.strip() for k, v in environ.items() if v.strip()}
        if "MODEL_PATH" not in env:
            raise BaselineConfigError("MODEL_PATH", "required (a model artifact file)")
        model_path = Path(env["MODEL_PATH"])
        if not model_path.is_file():
            raise BaselineConfigError("MODEL_PATH", f"{model_path} is not a file")
        window_file = Path(env["BASELINE_WINDOW_FILE"]) if "BASELINE_WINDOW_FILE" in env else None
        if window_file is not None and not window_file.is_file():
            raise BaselineConfigError("BASELINE_WINDOW_FILE", f"{window_file} is not a file")
        servers = tuple(s for s in env.get("KAFKA_BOOTSTRAP_SERVERS", "").split(",") if s)
        for server in servers:
            if not _SERVER.fullmatch(server):
                raise BaselineConfigError("KAFKA_BOOTSTRAP_SERVERS", f"{server!r} is not host:port")
        topic = env.get("KAFKA_TOPIC", "demand")
        if not _TOPIC.fullmatch(topic):
            raise BaselineConfigError("KAFKA_TOPIC", f"{topic!r} is not a valid topic name")
        raw_rows = env.get("WINDOW_ROWS", "4032")
        try:
            rows = int(raw_rows)
        except ValueError:
            raise BaselineConfigError("WINDOW_ROWS", f"{raw_rows!r} is not an integer") from None
        if rows < 1:
            raise BaselineConfigError("WINDOW_ROWS", f"must be at least 1, got {rows}")
        return cls(
            model_path=model_path,
            window_file=window_file,
            bootstrap_servers=servers,
            topic=topic,
            window_rows=rows,
        )
