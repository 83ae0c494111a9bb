"""Per-worker access to the shared window, its model and the daemon's status.

One :class:`WindowAccess` lives in each worker process (created by the app factory, opened
lazily after fork). Per request it costs a ``Reader.current()`` (a mapped counter read when
nothing changed) and an ``os.stat`` of the daemon status file. Everything that depends only
on a generation -- the forecast origin row, the checksum, the time range -- is computed once
per generation per process through ``Snapshot.derive``, and so is the window's forecast
(a pure function of window and model); the model is loaded once per model
change, verified by SHA-256. A :class:`webapp.follower.Follower` thread keeps this
preparation ahead of requests. Thread-safe (gthread workers): see :class:`WindowAccess`.
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
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from forecasting import Forecaster, ForecastingError, Origin, load_bytes
from shm import Reader, ShmError, Snapshot, table_checksum
from webapp.config import Settings
from webapp.errors import ProblemError
from webapp.validation import Expectations, format_times

__all__ = ["STATUS_FILE", "LoadedModel", "Readiness", "WindowAccess", "WindowSummary"]

log = logging.getLogger(__name__)
T = TypeVar("T")

STATUS_FILE = "daemon-status.json"
_MODEL_NAME_RE = re.compile(r"\Amodel-([0-9a-f]{64})\.skops\Z")
_MODEL_RETRY_S = 5.0
_MODEL_MAX_BYTES = 512 * 1024 * 1024
# The window may miss events (late or lost); interpolating short holes keeps /predict usable.
_WINDOW_MAX_GAP_STEPS = 48
# The daemon shares this host's clock: data published further ahead than this is not current.
_FUTURE_SLACK_MS = 1000
_TIME_TYPE = pa.timestamp("ns", tz="UTC")


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
    """The daemon's status JSON, re-read only when its (inode, mtime, size) changes.

    Thread-safe by construction: the cache is one immutable (key, value) pair replaced in a
    single assignment, so a thread never sees one file's key with another file's value.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._cache: tuple[tuple[int, int, int], dict[str, Any] | None] | None = None

    def read(self) -> dict[str, Any] | None:
        try:
            st = os.stat(self._path)
        except OSError:
            self._cache = None
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cache = self._cache
        if cache is not None and cache[0] == key:
            return cache[1]
        try:
            value = json.loads(self._path.read_bytes())
        except (OSError, ValueError):
            value = None
        parsed = value if isinstance(value, dict) else None
        self._cache = (key, parsed)
        return parsed


def _to_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model together with the request limits derived from it: one value, so a request
    validated against a model's limits is forecast by that same model."""

    forecaster: Forecaster
    expectations: Expectations


@dataclass(frozen=True, slots=True)
class _ModelState:
    key: tuple[str, str]
    loaded: LoadedModel | None
    error: str
    failed_at: float


class WindowAccess:
    """What the views use to reach the window and the model (see module docstring).

    Every piece of mutable state is either replaced in one assignment by an immutable value
    (the model state, the status cache) or changed under ``self._lock``, so request threads
    never see half of an update.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._reader = Reader(settings.shm_dir, check_schema=window_schema_problem)
        self._status = _StatusFile(settings.shm_dir / STATUS_FILE)
        self._model_lock = threading.Lock()
        self._model_state: _ModelState | None = None
        self._lock = threading.Lock()
        self._last: Snapshot | None = None
        self._read_error: str | None = None

    @property
    def settings(self) -> Settings:
        return self._settings

    def snapshot(self) -> Snapshot | None:
        """The newest generation (None before the first publication).

        A refused generation file (corrupt, unsafe, wrong schema, never announced) is skipped
        by the reader and named by :meth:`skipped_files`. If the directory itself is refused
        (unsafe permissions, unreadable), the last good generation this worker held is served
        and the error is logged once and reported by :meth:`no_data_reason`.
        """
        try:
            snapshot = self._reader.current()
        except (ShmError, OSError) as exc:
            error = str(exc)
            with self._lock:
                first = error != self._read_error
                self._read_error = error
                last = self._last
            if first:
                log.error("cannot read the window", extra={"error": error})
            return last
        with self._lock:
            self._read_error = None
            if snapshot is not None:
                self._last = snapshot
        return snapshot

    def no_data_reason(self) -> str:
        """Why :meth:`snapshot` returned None."""
        skipped = self.skipped_files()
        if self._read_error is None and skipped:
            return "no usable generation; skipped " + "; ".join(skipped)
        return self._read_error or "nothing has been published yet"

    def skipped_files(self) -> tuple[str, ...]:
        """Files in the shm directory the reader passed over at its last look, with reasons."""
        return self._reader.skipped

    def daemon_status(self) -> dict[str, Any] | None:
        """The parsed daemon status file, or None when absent or unreadable."""
        return self._status.read()

    # -- model -------------------------------------------------------------------------------

    def model(self, snapshot: Snapshot) -> tuple[Forecaster | None, str]:
        """The model named by ``snapshot``'s metadata and an explanation when there is none."""
        loaded, why = self.loaded_model(snapshot)
        return (loaded.forecaster if loaded is not None else None), why

    def loaded_model(self, snapshot: Snapshot) -> tuple[LoadedModel | None, str]:
        """The model named by ``snapshot``'s metadata with its request limits, or None and
        an explanation.

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
        state = self._model_state
        if state is None or not self._usable(state, key):
            with self._model_lock:
                state = self._model_state
                if state is None or not self._usable(state, key):
                    state = self._load(key)
                    self._model_state = state
        return state.loaded, state.error

    @staticmethod
    def _usable(state: _ModelState, key: tuple[str, str]) -> bool:
        if state.key != key:
            return False
        return state.loaded is not None or time.monotonic() - state.failed_at < _MODEL_RETRY_S

    def _load(self, key: tuple[str, str]) -> _ModelState:
        name, sha = key
        path = self._settings.shm_dir / name
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
            # Clients see the file name only: an OSError's text carries the absolute path.
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else exc
            log.error("model load failed", extra={"model_file": name, "error": str(exc)})
            return _ModelState(
                key, None, f"model {name} could not be loaded: {reason}", time.monotonic()
            )
        s = self._settings
        expect = Expectations(
            columns=(model.target,),
            min_rows=model.min_rows,
            step_ns=model.spec.step_ns,
            max_rows=s.max_rows,
            max_inference_length=min(s.max_inference_length, model.horizon),
            default_inference_length=min(s.default_inference_length, model.horizon),
            max_gap_steps=s.max_gap_steps,
        )
        log.info("model loaded", extra={"model_file": name, "model_version": model.version})
        return _ModelState(key, LoadedModel(model, expect), "", 0.0)

    def model_version(self, snapshot: Snapshot, model: Forecaster | None) -> str | None:
        return snapshot.metadata.get("model_version") or (model.version if model else None)

    # -- per-generation derivations ---------------------------------------------------------

    def origin(self, snapshot: Snapshot, model: Forecaster) -> Origin:
        """The forecast origin of the window for ``model``, computed once per generation.

        Raises a 503 :class:`ProblemError` when the window cannot feed the model.
        """
        # The snapshot's metadata decides the model, so its model_file keys the derivation.
        key = "webapp.origin:" + snapshot.metadata.get("model_file", "")
        return self._or_unusable(snapshot.derive(key, lambda snap: _window_origin(snap, model)))

    def forecast(self, snapshot: Snapshot, model: Forecaster) -> list[dict[str, Any]]:
        """The window's full-horizon forecast as ``[{"time", "value"}]``, once per generation.

        It is a pure function of (window, model), so the model runs once per generation per
        worker and a request only slices it. Raises like :meth:`origin`, also when the model
        fails on the window or its output is not finite (extreme values in the stream).
        """
        origin = self.origin(snapshot, model)
        key = "webapp.forecast:" + snapshot.metadata.get("model_file", "")
        return self._or_unusable(snapshot.derive(key, lambda _snap: _points(model, origin)))

    def _or_unusable(self, result: T | str) -> T:
        if isinstance(result, str):
            raise ProblemError(
                503,
                "window-unusable",
                "Cached window cannot be forecast",
                result,
                headers={"Retry-After": str(self._settings.retry_after_s)},
            )
        return result

    def summary(self, snapshot: Snapshot) -> WindowSummary:
        return snapshot.derive("webapp.summary", _summarize)

    def data_age_ms(self, snapshot: Snapshot, now_ns: int | None = None) -> int:
        """Milliseconds since the data was last known current.

        That is the newer of the generation's publication time and, when the daemon reports
        ``live`` (or ``crashed``, its last heartbeat) for this very generation, its heartbeat
        (a live daemon with no new events is still current).
        A generation published in the future counts as age 0 here; :meth:`readiness` refuses
        it.
        """
        return max(0, self._signed_age_ms(snapshot, now_ns))

    def _signed_age_ms(self, snapshot: Snapshot, now_ns: int | None = None) -> int:
        now = time.time_ns() if now_ns is None else now_ns
        base = snapshot.published_at_ns
        status = self.daemon_status()
        # "crashed" (written by make run's supervisor) keeps the dead daemon's last heartbeat:
        # the data was current then, and ages from there.
        if (
            status is not None
            and status.get("state") in {"live", "crashed"}
            and _to_int(status.get("generation")) == snapshot.generation
        ):
            base = max(base, _to_int(status.get("heartbeat_ns")) or 0)
        return (now - base) // 1_000_000

    def readiness(self) -> Readiness:
        """Ready = a generation, not restoring, a usable model and window, fresh data that is
        not from the future. A reason for not being ready names any file the reader skipped;
        :meth:`skipped_files` lists them when ready too."""
        state = self._readiness()
        skipped = self.skipped_files()
        if state.ready or not skipped or state.reason.startswith("no data"):
            return state
        return Readiness(False, f"{state.reason}; skipped {'; '.join(skipped)}", state.generation)

    def _readiness(self) -> Readiness:
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
            self.forecast(snapshot, model)
        except ProblemError as exc:
            return Readiness(False, f"insufficient data: {exc.detail}", gen)
        return self._freshness(snapshot)

    def _freshness(self, snapshot: Snapshot) -> Readiness:
        gen = snapshot.generation
        age = self._signed_age_ms(snapshot)
        if age < -_FUTURE_SLACK_MS:
            return Readiness(
                False, f"future data: published {-age} ms ahead of this host's clock", gen
            )
        if age > self._settings.max_data_age_ms:
            reason = f"stale: data is {age} ms old (limit {self._settings.max_data_age_ms})"
            status = self.daemon_status()
            if status is not None and status.get("state") != "live" and status.get("last_error"):
                reason += f"; daemon {status.get('state')}: {str(status['last_error'])[:300]}"
            return Readiness(False, reason, gen)
        return Readiness(True, "ready", gen)

    def after_fork(self) -> None:
        """Called once per worker after fork, before it serves: replaces the locks made in the
        preloading master with ones of this process (under gevent they must be the patched
        kind). :meth:`prepare_newest` then readies the window for the first request."""
        self._lock = threading.Lock()
        self._model_lock = threading.Lock()

    def prepare_newest(self) -> Snapshot | None:
        """Open the newest generation and derive what requests need from it (summary, model,
        forecast); return it. Never raises: a failure is left for a request to report."""
        snapshot = None
        with contextlib.suppress(Exception):
            snapshot = self.snapshot()
            if snapshot is not None:
                self.summary(snapshot)
                model, _ = self.model(snapshot)
                if model is not None:
                    self.forecast(snapshot, model)
        return snapshot


def window_schema_problem(schema: pa.Schema) -> str | None:
    """Why a published table cannot be a window (the reader skips such a generation)."""
    index = schema.get_field_index("time")
    if index < 0:
        return f"no 'time' column (columns {schema.names})"
    if schema.field(index).type != _TIME_TYPE:
        return f"column 'time' is {schema.field(index).type}, not {_TIME_TYPE}"
    return None


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


def _points(model: Forecaster, origin: Origin) -> list[dict[str, Any]] | str:
    try:
        with np.errstate(all="ignore"):
            times, values = model.predict(origin, model.horizon)
    except (ForecastingError, ValueError, FloatingPointError) as exc:
        return f"the model cannot forecast this window: {exc}"
    if not np.isfinite(values).all():
        return "the window's forecast is not finite (values too extreme for the model)"
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
