"""Model artifacts: skops files verified by SHA-256, loaded with an explicit trusted list.

File format: ``skops.io`` of a plain dict ``{"format": 1, "version", "target", "lags",
"step_ns", "horizon", "daily_order", "weekly_order", "estimator"}`` where ``estimator`` is a
``Pipeline(StandardScaler, Ridge)``. Nothing is unpickled: skops rebuilds only the types in
:data:`TRUSTED_TYPES` and the structure is checked after loading.

In an shm directory, artifacts are installed and named by :mod:`contract.model_files`
(atomic, mode 0640, named by their digest); :func:`load_file` checks the digest a model
file's name promises.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from contract.model_files import model_file_sha256
from forecasting.errors import ArtifactError, ArtifactIntegrityError
from forecasting.features import FeatureSpec
from forecasting.model import Forecaster

__all__ = [
    "FORMAT",
    "TRUSTED_TYPES",
    "dumps",
    "load_bytes",
    "load_file",
    "sha256_hex",
]

FORMAT = 1
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._ridge.Ridge",
)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dumps(model: Forecaster) -> bytes:
    """Serialize a forecaster to skops bytes."""
    spec = model.spec
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": model.version,
        "target": model.target,
        "lags": list(spec.lags),
        "step_ns": spec.step_ns,
        "horizon": spec.horizon,
        "daily_order": spec.daily_order,
        "weekly_order": spec.weekly_order,
        "estimator": model.estimator,
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
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(f"artifact is not a format-{FORMAT} forecaster")
    estimator = payload.get("estimator")
    if not (
        isinstance(estimator, Pipeline)
        and len(estimator.steps) == 2
        and isinstance(estimator.steps[0][1], StandardScaler)
        and isinstance(estimator.steps[1][1], Ridge)
    ):
        raise ArtifactError("artifact estimator is not Pipeline(StandardScaler, Ridge)")
    try:
        spec = FeatureSpec(
            lags=tuple(int(x) for x in payload["lags"]),
            step_ns=int(payload["step_ns"]),
            horizon=int(payload["horizon"]),
            daily_order=int(payload["daily_order"]),
            weekly_order=int(payload["weekly_order"]),
        )
        target = str(payload["target"])
        version = str(payload["version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"artifact metadata is malformed: {exc}") from exc
    n_in = getattr(estimator.steps[0][1], "n_features_in_", None)
    if n_in != spec.n_features:
        raise ArtifactError(f"estimator expects {n_in} features, spec gives {spec.n_features}")
    return Forecaster(spec=spec, estimator=estimator, target=target, version=version)
