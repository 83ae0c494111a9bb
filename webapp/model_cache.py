"""The model a generation names, loaded and verified once per model per process.

:meth:`ModelCache.get` answers a generation's metadata with one immutable
:class:`LoadedModel`: the forecaster together with the request limits derived from it. A
request validates against and forecasts with that one value, so it can never check a body
against one model's limits and run another model on it, however generations and models
change under concurrent requests.

The file is read with :func:`contract.model_files.read_model_file` (a regular file of bounded
size, symlinks not followed) and verified against the digest the generation states (or its
name promises) by :func:`forecasting.load_bytes`. A failed load is retried after
:data:`RETRY_S` seconds rather than on every request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from contract.metadata import GenerationMeta
from contract.model_files import model_file_name, model_file_sha256, read_model_file
from forecasting import Forecaster, ForecastingError, load_bytes
from webapp.config import Settings
from webapp.validation import Expectations

__all__ = ["RETRY_S", "LoadedModel", "ModelCache", "NoModelError", "expectations_for"]

log = logging.getLogger(__name__)

RETRY_S = 5.0
# The model of the newest generation and the one before: threads still serving the previous
# generation while a new model arrives keep theirs instead of reloading it in turn.
_KEEP = 2


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A verified model and the limits a request body must satisfy for it: one value."""

    file: str
    sha256: str
    forecaster: Forecaster
    expectations: Expectations


class NoModelError(Exception):
    """The generation names no usable model; ``reason`` says why (the file name, never its
    directory)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def expectations_for(model: Forecaster, settings: Settings) -> Expectations:
    """The request limits for ``model`` under ``settings`` (the model's horizon caps both
    inference lengths)."""
    return Expectations(
        columns=(model.target,),
        min_rows=model.min_rows,
        step_ns=model.step_ns,
        max_rows=settings.max_rows,
        max_inference_length=min(settings.max_inference_length, model.horizon),
        default_inference_length=min(settings.default_inference_length, model.horizon),
        max_gap_steps=settings.max_gap_steps,
        frequency=model.frequency,
        index_col=model.time_col,
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    key: tuple[str, str]
    model: LoadedModel | None
    error: str
    failed_at: float

    def usable(self, key: tuple[str, str]) -> bool:
        if self.key != key:
            return False
        return self.model is not None or time.monotonic() - self.failed_at < RETRY_S


class ModelCache:
    """Models of one process (see the module docstring). Thread-safe: the entries are one
    immutable tuple replaced in a single assignment; loads happen one at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._entries: tuple[_Entry, ...] = ()
        self._lock = threading.Lock()

    def get(self, meta: GenerationMeta) -> LoadedModel:
        """The model ``meta`` names, with its limits; raise :class:`NoModelError`."""
        name = meta.model_file
        if not name:
            raise NoModelError("the current generation names no model file")
        promised = model_file_sha256(name)
        if promised is None:
            raise NoModelError(f"model file {name!r} is not {model_file_name('<sha256>')}")
        key = (name, meta.model_sha256 or promised)
        entry = self._find(key)
        if entry is None:
            with self._lock:
                entry = self._find(key)
                if entry is None:
                    entry = self._load(key)
                    kept = tuple(e for e in self._entries if e.key != key)
                    self._entries = (entry, *kept)[:_KEEP]
        if entry.model is None:
            raise NoModelError(entry.error)
        return entry.model

    def _find(self, key: tuple[str, str]) -> _Entry | None:
        for entry in self._entries:
            if entry.usable(key):
                return entry
        return None

    def _load(self, key: tuple[str, str]) -> _Entry:
        name, sha = key
        try:
            model = load_bytes(read_model_file(self._settings.shm_dir, name), sha256=sha)
        except (OSError, ForecastingError) as exc:
            # Clients see the file name only: an OSError's text may carry the absolute path.
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else exc
            log.error("model load failed", extra={"model": name, "error": str(exc)})
            return _Entry(
                key, None, f"model {name} could not be loaded: {reason}", time.monotonic()
            )
        log.info("model loaded", extra={"model": name, "model_version": model.version})
        loaded = LoadedModel(name, sha, model, expectations_for(model, self._settings))
        return _Entry(key, loaded, "", 0.0)

    def after_fork(self) -> None:
        """Replace the lock made in a preloading master with one of this process (under
        gevent it must be the patched kind)."""
        self._lock = threading.Lock()
