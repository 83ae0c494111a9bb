"""Settings of the web application, built once from the environment by :meth:`Settings.from_env`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from webapp.errors import ConfigError

__all__ = ["Settings"]

DEFAULT_SHM_DIR = "/dev/shm/shm-forecast"  # noqa: S108 (shared tmpfs is the design)


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from the environment.

    ``max_inference_length`` is a ceiling; the effective maximum is also bounded by the
    loaded model's horizon. ``max_gap_steps`` is the irregular-spacing policy for caller
    data: runs of up to that many missing steps are interpolated, anything else is a 422.
    """

    shm_dir: Path = Path(DEFAULT_SHM_DIR)
    max_data_age_ms: int = 10_000
    max_body_bytes: int = 1_048_576
    max_rows: int = 10_000
    max_inference_length: int = 48
    default_inference_length: int = 1
    max_gap_steps: int = 0
    retry_after_s: int = 1
    log_level: str = "INFO"
    metrics_dir: Path | None = None
    follow_interval_ms: int = 250
    body_timeout_s: int = 10

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read ``SHM_DIR``, ``MAX_DATA_AGE_MS``, ``MAX_BODY_BYTES``, ``MAX_ROWS``,
        ``MAX_INFERENCE_LENGTH``, ``DEFAULT_INFERENCE_LENGTH``, ``MAX_GAP_STEPS``,
        ``READYZ_RETRY_AFTER_S``, ``LOG_LEVEL``, ``WORKER_FOLLOW_INTERVAL_MS`` (how often an
        idle worker checks for a new generation), ``REQUEST_BODY_TIMEOUT_S`` (time allowed
        to receive a request body) and ``PROMETHEUS_MULTIPROC_DIR`` (set means
        metrics are aggregated over worker processes); raise :class:`ConfigError` naming the
        variable on a bad value."""
        level = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {level!r}")
        max_len = _int(environ, "MAX_INFERENCE_LENGTH", cls.max_inference_length, minimum=1)
        default_len = _int(
            environ, "DEFAULT_INFERENCE_LENGTH", cls.default_inference_length, minimum=1
        )
        if default_len > max_len:
            raise ConfigError(
                f"DEFAULT_INFERENCE_LENGTH ({default_len}) exceeds MAX_INFERENCE_LENGTH ({max_len})"
            )
        shm_dir = environ.get("SHM_DIR", "").strip() or DEFAULT_SHM_DIR
        return cls(
            shm_dir=Path(shm_dir),
            max_data_age_ms=_int(environ, "MAX_DATA_AGE_MS", cls.max_data_age_ms, minimum=1),
            max_body_bytes=_int(environ, "MAX_BODY_BYTES", cls.max_body_bytes, minimum=2),
            max_rows=_int(environ, "MAX_ROWS", cls.max_rows, minimum=1),
            max_inference_length=max_len,
            default_inference_length=default_len,
            max_gap_steps=_int(environ, "MAX_GAP_STEPS", cls.max_gap_steps, minimum=0),
            retry_after_s=_int(environ, "READYZ_RETRY_AFTER_S", cls.retry_after_s, minimum=1),
            log_level=level,
            body_timeout_s=_int(environ, "REQUEST_BODY_TIMEOUT_S", cls.body_timeout_s, minimum=1),
            follow_interval_ms=_int(
                environ, "WORKER_FOLLOW_INTERVAL_MS", cls.follow_interval_ms, minimum=10
            ),
            metrics_dir=Path(metrics)
            if (metrics := environ.get("PROMETHEUS_MULTIPROC_DIR"))
            else None,
        )
