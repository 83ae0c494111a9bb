"""Model artifacts: skops files verified by SHA-256, loaded with an explicit trusted list.

File format: ``skops.io`` of a plain dict ``{"format": 1, "version", "target", "lags",
"step_ns", "horizon", "daily_order", "weekly_order", "estimator"}`` where ``estimator`` is a
``Pipeline(StandardScaler, Ridge)``. Nothing is unpickled: skops rebuilds only the types in
:data:`TRUSTED_TYPES` and the structure is checked after loading.

Artifacts placed in an shm directory are named ``model-<sha256>.skops`` and written
atomically (temp file + ``os.replace``) with mode 0640, so a reader never sees a partial
file and the name alone says what digest to expect.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import skops.io as sio
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from forecasting.errors import ArtifactError, ArtifactIntegrityError
from forecasting.features import FeatureSpec
from forecasting.model import Forecaster

__all__ = [
    "FORMAT",
    "TRUSTED_TYPES",
    "artifact_name",
    "dumps",
    "install",
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
_NAME_RE = re.compile(r"\Amodel-([0-9a-f]{64})\.skops\Z")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifact_name(sha256: str) -> str:
    """The file name an artifact with this digest has inside an shm directory."""
    return f"model-{sha256}.skops"


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

    When ``sha256`` is None and the file is named ``model-<sha256>.skops``, the digest in the
    name is verified.
    """
    p = Path(path)
    if sha256 is None:
        match = _NAME_RE.match(p.name)
        sha256 = match.group(1) if match else None
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"cannot read model artifact {p}: {exc.strerror}") from exc
    return load_bytes(data, sha256=sha256)


def install(directory: str | os.PathLike[str], data: bytes) -> tuple[str, str]:
    """Write artifact bytes into ``directory`` as ``model-<sha256>.skops`` (0640, atomic).

    Returns ``(file_name, sha256)``. An existing file of that name is left as is, since its
    name already pins its content.
    """
    digest = sha256_hex(data)
    name = artifact_name(digest)
    target = Path(directory) / name
    if target.exists():
        return name, digest
    fd, tmp = tempfile.mkstemp(prefix=".model-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o640)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name, digest


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
