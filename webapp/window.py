"""Per-worker access to the shared window, its model and the daemon's status.

One :class:`WindowAccess` lives in each worker process (created by the app factory, opened
lazily after fork). Per request it costs a ``Reader.current()`` (a mapped counter read when
nothing changed) and an ``os.stat`` of the daemon status file. Everything that depends only
on a generation -- the forecast origin row, the checksum, the time range -- is computed once
per generation per process through ``Snapshot.derive``, and so is the window's forecast
(a pure function of window and model); the model is loaded once per model
change, verified by SHA-256. Thread-safe (gthread workers): the model cache is locked and
``derive`` serialises first computations.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecasting import Forecaster, ForecastingError, Origin, load_bytes
from shm import Reader, ShmError, Snapshot, table_checksum
from webapp.config import Settings
from webapp.errors import ProblemError
from webapp.validation import Expectations, format_times

__all__ = ["STATUS_FILE", "Readiness", "WindowAccess", "WindowSummary"]

log = logging.getLogger(__name__)

STATUS_FILE = "daemon-status.json"
_MODEL_NAME_RE = re.compile(r"\Amodel-([0-9a-f]{64})\.skops\Z")
_MODEL_RETRY_S = 5.0
_MODEL_MAX_BYTES = 512 * 1024 * 1024
# The window may miss events (late or lost); interpolating short holes keeps /predict usable.
_WINDOW_MAX_GAP_STEPS = 48


@dataclass(frozen=True, slots=True)
class WindowSummary:
    """Facts about one generation, derived once per generation."""

    rows: int
    time_min: str | None
    time_max: str | None
    checksum: str


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reason: str
    generation: int | None


class _StatusFile:
    """The daemon's status JSON, re-read only when its (inode, mtime, size) changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._key: tuple[int, int, int] | None = None
        self._value: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            self._key, self._value = None, None
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if key != self._key:
            try:
                value = json.loads(self._path.read_bytes())
            except (OSError, ValueError):
                value = None
            self._key = key
            self._value = value if isinstance(value, dict) else None
        return self._value


def _to_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class WindowAccess:
    """What the views use to reach the window and the model (see module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reader = Reader(settings.shm_dir)
        self._status = _StatusFile(settings.shm_dir / STATUS_FILE)
        self._lock = threading.Lock()
        self._model_key: tuple[str, str] | None = None
        self._model: Forecaster | None = None
        self._model_error: str | None = None
        self._model_failed_at = 0.0
        self._expect: Expectations | None = None
        self._last: Snapshot | None = None
        self._read_error: str | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def snapshot(self) -> Snapshot | None:
        """The newest generation (None before the first publication).

        If the directory or the newest file is refused (unsafe permissions, a corrupt
        file), the last good generation this worker held is served and the error is logged
        once and reported by :meth:`no_data_reason`.
        """
        try:
            snapshot = self._reader.current()
        except ShmError as exc:
            if str(exc) != self._read_error:
                log.error("cannot read the window", extra={"error": str(exc)})
            self._read_error = str(exc)
            return self._last
        self._read_error = None
        self._last = snapshot
        return snapshot

    def no_data_reason(self) -> str:
        """Why :meth:`snapshot` returned None."""
        return self._read_error or "nothing has been published yet"

    def daemon_status(self) -> dict[str, Any] | None:
        """The parsed daemon status file, or None when absent or unreadable."""
        return self._status.read()

    # -- model -------------------------------------------------------------------------------

    def model(self, snapshot: Snapshot) -> tuple[Forecaster | None, str]:
        """The model named by ``snapshot``'s metadata and an explanation when there is none.

        Loaded and verified once per (file, digest) per process; a failed load is retried
        after a few seconds rather than on every request.
        """
        name = snapshot.metadata.get("model_file", "")
        if not name:
            return None, "the current generation names no model_file"
        match = _MODEL_NAME_RE.match(name)
        if match is None:
            return None, f"model_file {name!r} is not model-<sha256>.skops"
        sha = snapshot.metadata.get("model_sha256", "") or match.group(1)
        key = (name, sha)
        with self._lock:
            if key == self._model_key and (
                self._model is not None or time.monotonic() - self._model_failed_at < _MODEL_RETRY_S
            ):
                return self._model, self._model_error or ""
            self._load(key)
            return self._model, self._model_error or ""

    def _load(self, key: tuple[str, str]) -> None:
        name, sha = key
        path = self._settings.shm_dir / name
        self._model_key = key
        try:
            # O_NONBLOCK: a FIFO planted under this name must not hang the worker.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                st = os.fstat(fh.fileno())
                if not stat.S_ISREG(st.st_mode) or st.st_size > _MODEL_MAX_BYTES:
                    raise OSError(f"{name} is not a regular file under {_MODEL_MAX_BYTES} bytes")
                data = fh.read()
            model = load_bytes(data, sha256=sha)
        except (OSError, ForecastingError) as exc:
            self._model, self._expect = None, None
            # Clients see the file name only: an OSError's text carries the absolute path.
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else exc
            self._model_error = f"model {name} could not be loaded: {reason}"
            self._model_failed_at = time.monotonic()
            log.error("model load failed", extra={"model_file": name, "error": str(exc)})
            return
        self._model, self._model_error = model, None
        s = self._settings
        self._expect = Expectations(
            columns=(model.target,),
            min_rows=model.min_rows,
            step_ns=model.spec.step_ns,
            max_rows=s.max_rows,
            max_inference_length=min(s.max_inference_length, model.horizon),
            default_inference_length=min(s.default_inference_length, model.horizon),
            max_gap_steps=s.max_gap_steps,
        )
        log.info("model loaded", extra={"model_file": name, "model_version": model.version})

    def expectations(self) -> Expectations:
        """Validation limits for the loaded model (call after :meth:`model` returned one)."""
        assert self._expect is not None
        return self._expect

    def model_version(self, snapshot: Snapshot, model: Forecaster | None) -> str | None:
        return snapshot.metadata.get("model_version") or (model.version if model else None)

    # -- per-generation derivations ---------------------------------------------------------

    def origin(self, snapshot: Snapshot, model: Forecaster) -> Origin:
        """The forecast origin of the window for ``model``, computed once per generation.

        Raises a 503 :class:`ProblemError` when the window cannot feed the model.
        """
        # The snapshot's metadata decides the model, so its model_file keys the derivation.
        key = "webapp.origin:" + snapshot.metadata.get("model_file", "")
        result = snapshot.derive(key, lambda snap: _window_origin(snap, model))
        if isinstance(result, str):
            raise ProblemError(
                503,
                "window-unusable",
                "Cached window cannot be forecast",
                result,
                headers={"Retry-After": str(self._settings.retry_after_s)},
            )
        return result

    def forecast(self, snapshot: Snapshot, model: Forecaster) -> list[dict[str, Any]]:
        """The window's full-horizon forecast as ``[{"time", "value"}]``, once per generation.

        It is a pure function of (window, model), so the model runs once per generation per
        worker and a request only slices it. Raises like :meth:`origin`.
        """
        origin = self.origin(snapshot, model)
        key = "webapp.forecast:" + snapshot.metadata.get("model_file", "")
        return snapshot.derive(key, lambda _snap: _points(model, origin, model.horizon))

    def summary(self, snapshot: Snapshot) -> WindowSummary:
        return snapshot.derive("webapp.summary", _summarize)

    def data_age_ms(self, snapshot: Snapshot, now_ns: int | None = None) -> int:
        """Milliseconds since the data was last known current.

        That is the newer of the generation's publication time and, when the daemon reports
        ``live`` for this very generation, its heartbeat (a live daemon with no new events is
        still current).
        """
        now = time.time_ns() if now_ns is None else now_ns
        base = snapshot.published_at_ns
        status = self.daemon_status()
        if (
            status is not None
            and status.get("state") == "live"
            and _to_int(status.get("generation")) == snapshot.generation
        ):
            base = max(base, _to_int(status.get("heartbeat_ns")) or 0)
        return max(0, (now - base) // 1_000_000)

    def readiness(self) -> Readiness:
        """Ready = a generation, not restoring, a usable model and window, fresh data."""
        snapshot = self.snapshot()
        if snapshot is None:
            return Readiness(False, f"no data: {self.no_data_reason()}", None)
        gen = snapshot.generation
        if snapshot.metadata.get("state") == "restoring":
            return Readiness(False, "restoring", gen)
        model, why = self.model(snapshot)
        if model is None:
            return Readiness(False, f"no model: {why}", gen)
        try:
            self.origin(snapshot, model)
        except ProblemError as exc:
            return Readiness(False, f"insufficient data: {exc.detail}", gen)
        age = self.data_age_ms(snapshot)
        if age > self._settings.max_data_age_ms:
            return Readiness(
                False, f"stale: data is {age} ms old (limit {self._settings.max_data_age_ms})", gen
            )
        return Readiness(True, "ready", gen)

    def warm_up(self) -> None:
        """Open the reader, load the model and derive features now (after fork), so the
        first request does not pay for them. Never raises."""
        with contextlib.suppress(Exception):
            snapshot = self.snapshot()
            if snapshot is not None:
                self.summary(snapshot)
                model, _ = self.model(snapshot)
                if model is not None:
                    self.forecast(snapshot, model)


def _window_origin(snapshot: Snapshot, model: Forecaster) -> Origin | str:
    table = snapshot.table
    if "time" not in table.column_names or model.target not in table.column_names:
        return f"window lacks column 'time' or {model.target!r} (has {table.column_names})"
    rows = table.num_rows
    if rows < model.min_rows:
        return f"window has {rows} rows, the model needs at least {model.min_rows}"
    # Only the tail feeds the origin row; enough of it to survive interpolated gaps.
    tail = table.slice(max(0, rows - model.min_rows * 2))
    try:
        times = np.asarray(tail.column("time").to_numpy(), dtype="datetime64[ns]").view(np.int64)
        values = np.asarray(tail.column(model.target).to_numpy(), dtype=np.float64)
        return model.prepare(times, values, max_gap_steps=_WINDOW_MAX_GAP_STEPS)
    except (ForecastingError, ValueError, TypeError) as exc:
        return f"window cannot feed the model: {exc}"


def _points(model: Forecaster, origin: Origin, steps: int) -> list[dict[str, Any]]:
    times, values = model.predict(origin, steps)
    stamps = format_times(times, model.spec.step_ns)
    return [{"time": t, "value": v} for t, v in zip(stamps, values.tolist(), strict=True)]


def _summarize(snapshot: Snapshot) -> WindowSummary:
    table = snapshot.table
    tmin = tmax = None
    if table.num_rows and "time" in table.column_names:
        col = table.column("time")
        tmin, tmax = _iso(col[0].value), _iso(col[-1].value)
    return WindowSummary(
        rows=table.num_rows, time_min=tmin, time_max=tmax, checksum=table_checksum(table)
    )


def _iso(ns: object) -> str | None:
    if not isinstance(ns, int):
        return None
    return str(np.datetime_as_string(np.datetime64(ns, "ns"), unit="s")) + "Z"
