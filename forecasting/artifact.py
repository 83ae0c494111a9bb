"""Model artifacts: skops files verified by SHA-256, loaded with an explicit trusted list.

File format 2: ``skops.io`` of a plain dict ``{"format": 2, "version", "time_col",
"target", "series_col", "frequency" (pandas alias), "season", "horizon", "min_rows",
"max_gap_steps", "tiers": [{"lags", "kind", "estimator", "residuals"}, ...]}`` where each
estimator is a ``Pipeline(StandardScaler, Ridge)`` or a ``HistGradientBoostingRegressor``
and ``residuals`` the tier's sorted scaled backtest residuals ``(n, horizon)``. Nothing is
unpickled: skops rebuilds only the types in :data:`TRUSTED_TYPES` and the structure is
checked after loading. Format 1 (one Ridge on a fixed step, before frequencies, tiers and
intervals) is refused with a message saying to retrain.

In an shm directory, artifacts are installed and named by :mod:`contract.model_files`
(atomic, mode 0640, named by their digest); :func:`load_file` checks the digest a model
file's name promises.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from contract.model_files import model_file_sha256
from forecasting.errors import ArtifactError, ArtifactIntegrityError
from forecasting.features import n_calendar
from forecasting.frequency import Frequency
from forecasting.model import Forecaster, Tier

__all__ = [
    "FORMAT",
    "TRUSTED_TYPES",
    "dumps",
    "load_bytes",
    "load_file",
    "sha256_hex",
]

FORMAT = 2
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(model: Forecaster) -> bytes:
    """Serialize a forecaster to skops bytes."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": model.version,
        "time_col": model.time_col,
        "target": model.target,
        "series_col": model.series_col,
        "frequency": model.frequency.alias,
        "season": model.season,
        "horizon": model.horizon,
        "min_rows": model.min_rows,
        "max_gap_steps": model.max_gap_steps,
        "tiers": [
            {
                "lags": tier.lags,
                "kind": tier.kind,
                "estimator": tier.estimator,
                "residuals": np.ascontiguousarray(tier.residuals, dtype=np.float64),
            }
            for tier in model.tiers
        ],
    }
    return bytes(sio.dumps(payload))


def load_bytes(data: bytes, *, sha256: str | None) -> Forecaster:
    """Verify (when ``sha256`` is given) and load an artifact.

    Raises :class:`ArtifactIntegrityError` on a digest mismatch and :class:`ArtifactError`
    for untrusted types or a malformed payload. Always pass the expected digest for
    artifacts that crossed a process or machine boundary.
    """
    if sha256 is not None:
        actual = sha256_hex(data)
        if actual != sha256.lower():
            raise ArtifactIntegrityError(
                f"artifact digest {actual} does not match the expected {sha256}"
            )
    try:
        untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
        if untrusted:
            raise ArtifactError(f"artifact holds untrusted types: {sorted(untrusted)}")
        payload = sio.loads(data, trusted=list(TRUSTED_TYPES))
    except ArtifactError:
        raise
    except Exception as exc:  # skops raises many types for corrupt input
        raise ArtifactError(f"cannot read model artifact: {exc}") from exc
    return _from_payload(payload)


def load_file(path: str | os.PathLike[str], *, sha256: str | None) -> Forecaster:
    """Read ``path`` once and load it with :func:`load_bytes`.

    When ``sha256`` is None and the file has a model file name
    (:func:`contract.model_files.model_file_name`), the digest in the name is verified.
    """
    p = Path(path)
    if sha256 is None:
        sha256 = model_file_sha256(p.name)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read model artifact {p}: {exc.strerror}") from exc
    return load_bytes(data, sha256=sha256)


def _from_payload(payload: object) -> Forecaster:
    if not isinstance(payload, dict):
        raise ArtifactError("artifact is not a forecaster")
    if payload.get("format") == 1:
        raise ArtifactError(
            "artifact is format 1 (one Ridge on a fixed step, no intervals); this version "
            f"reads format {FORMAT}: retrain it with python -m forecasting.train"
        )
    if payload.get("format") != FORMAT:
        raise ArtifactError(f"artifact is not a format-{FORMAT} forecaster")
    try:
        frequency = Frequency(str(payload["frequency"]))
        horizon = int(payload["horizon"])
        tiers = tuple(_tier(raw, frequency, horizon) for raw in payload["tiers"])
        series_col = payload["series_col"]
        model = Forecaster(
            frequency=frequency,
            season=int(payload["season"]),
            horizon=horizon,
            target=str(payload["target"]),
            time_col=str(payload["time_col"]),
            series_col=None if series_col is None else str(series_col),
            max_gap_steps=int(payload["max_gap_steps"]),
            tiers=tiers,
            version=str(payload["version"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact metadata is malformed: {exc}") from exc
    if model.min_rows != payload.get("min_rows"):
        raise ArtifactError("artifact min_rows does not match its shallowest tier")
    return model


def _tier(raw: object, frequency: Frequency, horizon: int) -> Tier:
    if not isinstance(raw, dict):
        raise TypeError("a tier is not a mapping")
    lags, kind, estimator = int(raw["lags"]), raw["kind"], raw["estimator"]
    residuals = np.asarray(raw["residuals"], dtype=np.float64)
    if residuals.ndim != 2 or residuals.shape[1] != horizon or len(residuals) == 0:
        raise ArtifactError(f"tier {lags}: residuals are not (n, {horizon})")
    calendar = n_calendar(frequency)
    if kind == "ridge":
        if not (
            isinstance(estimator, Pipeline)
            and len(estimator.steps) == 2
            and isinstance(estimator.steps[0][1], StandardScaler)
            and isinstance(estimator.steps[1][1], Ridge)
        ):
            raise ArtifactError("a ridge tier's estimator is not Pipeline(StandardScaler, Ridge)")
        expected = lags + calendar
        n_in = getattr(estimator.steps[0][1], "n_features_in_", None)
    elif kind == "hgb":
        if not isinstance(estimator, HistGradientBoostingRegressor):
            raise ArtifactError("an hgb tier's estimator is not HistGradientBoostingRegressor")
        expected = lags + 1 + calendar
        n_in = getattr(estimator, "n_features_in_", None)
    else:
        raise ArtifactError(f"unknown tier kind {kind!r}")
    if n_in != expected:
        raise ArtifactError(f"tier {lags}: estimator expects {n_in} features, not {expected}")
    return Tier(lags, kind, estimator, residuals)
