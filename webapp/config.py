"""Settings of the web application, read once from the environment by :meth:`Settings.from_env`.

The shared part (``SHM_DIR``, ``MAX_DATA_AGE_MS``, ``LOG_LEVEL``) comes from
:class:`contract.settings.SharedSettings`, so the workers and the daemon agree on it; every
bad value raises :class:`contract.errors.ConfigError` naming its variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from contract.errors import ConfigError
from contract.settings import SharedSettings

__all__ = ["Settings"]


class Settings(SharedSettings):
    """Everything the app reads from the environment.

    ``max_inference_length`` is a ceiling; the effective maximum is also bounded by the
    loaded model's horizon. ``max_gap_steps`` is the irregular-spacing policy for caller
    data: runs of up to that many missing steps are interpolated, anything else is a 422.
    """

    max_body_bytes: int = Field(
        1_048_576, ge=2, validation_alias="MAX_BODY_BYTES", description="larger bodies get 413"
    )
    max_rows: int = Field(
        10_000, ge=1, validation_alias="MAX_ROWS", description="rows allowed in a caller's data"
    )
    max_inference_length: int = Field(
        48,
        ge=1,
        validation_alias="MAX_INFERENCE_LENGTH",
        description="ceiling of inference_length (the model's horizon bounds it too)",
    )
    default_inference_length: int = Field(
        1,
        ge=1,
        validation_alias="DEFAULT_INFERENCE_LENGTH",
        description="inference_length of a body that gives none",
    )
    max_gap_steps: int = Field(
        0,
        ge=0,
        validation_alias="MAX_GAP_STEPS",
        description="missing steps in caller data that are interpolated rather than refused",
    )
    retry_after_s: int = Field(
        1, ge=1, validation_alias="READYZ_RETRY_AFTER_S", description="Retry-After of 503 answers"
    )
    metrics_dir: Path | None = Field(
        None,
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="set: metrics are aggregated over the worker processes through this directory",
    )
    follow_interval_ms: int = Field(
        20,
        ge=10,
        validation_alias="WORKER_FOLLOW_INTERVAL_MS",
        description="how often an idle worker opens a new generation and prepares its forecast",
    )
    body_timeout_s: int = Field(
        10,
        ge=1,
        validation_alias="REQUEST_BODY_TIMEOUT_S",
        description="time allowed to receive a request body (gevent worker), else 408",
    )

    @model_validator(mode="after")
    def _default_within_maximum(self) -> Self:
        if self.default_inference_length > self.max_inference_length:
            raise ConfigError(
                "DEFAULT_INFERENCE_LENGTH",
                f"{self.default_inference_length} exceeds MAX_INFERENCE_LENGTH "
                f"({self.max_inference_length})",
            )
        return self
