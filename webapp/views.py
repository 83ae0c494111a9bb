"""HTTP endpoints. Contracts: `docs/web-api.md` and ``/openapi.json``."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected

from forecasting import ForecastingError
from webapp import metrics
from webapp.errors import ProblemError
from webapp.openapi import build_spec
from webapp.validation import check_forecast, decode_json, format_times, parse_predict
from webapp.window import WindowAccess

__all__ = ["GENERATION_HEADER", "blueprint"]

GENERATION_HEADER = "X-Cache-Generation"

blueprint = Blueprint("api", __name__)


def _access() -> WindowAccess:
    access: WindowAccess = current_app.extensions["webapp"]
    return access


def _json(payload: dict[str, Any], status: int = 200, generation: int | None = None) -> Response:
    """A JSON response. NaN and Infinity are not JSON: a payload holding one raises
    ``ValueError`` (a 500 in the log) rather than reaching a client as an invalid body."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    response = Response(body, status=status, mimetype="application/json")
    if generation is not None:
        response.headers[GENERATION_HEADER] = str(generation)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unavailable(slug: str, title: str, detail: str, retry_after: int) -> ProblemError:
    return ProblemError(503, slug, title, detail, headers={"Retry-After": str(retry_after)})


def _unreadable_body(exc: Exception) -> ProblemError:
    """The 400 for a body the server could not read.

    Gunicorn raises its chunked-framing errors (bad chunk size, extension, terminator or
    trailer) from the body stream, and a connection that ends mid-body surfaces as
    ``NoMoreData`` (an ``OSError``), which Werkzeug's length-limited stream turns into
    ``ClientDisconnected``. Gunicorn never reuses a connection whose body read failed.
    """
    if isinstance(exc, (NoMoreData, ClientDisconnected)):
        detail = "the request body ended before its declared end"
    elif isinstance(exc, OSError):
        detail = f"the request body could not be read: {exc.strerror or type(exc).__name__}"
    else:
        detail = f"malformed chunked body: {str(exc)[:120]}"
    return ProblemError(400, "bad-request", "Bad Request", detail)


def _read_json_body() -> object:
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ProblemError(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            f"Content-Type must be application/json, got {mimetype[:80] or 'none'}",
        )
    try:
        raw = request.get_data(cache=False)
    except (ParseException, OSError, ClientDisconnected) as exc:
        raise _unreadable_body(exc) from exc
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and len(raw) >= limit:
        # Werkzeug stops a chunked body at the limit without raising: reaching it is too much.
        raise ProblemError(
            413,
            "payload-too-large",
            "Content Too Large",
            f"the body exceeds the limit of {limit} bytes",
        )
    return decode_json(raw)


@blueprint.post("/predict")
def predict() -> Response:
    """Forecast from the cached window or from the caller's series.

    For the window, the model's full-horizon output is derived once per generation (see
    ``WindowAccess.forecast``); for caller data the model runs on every request.
    """
    body = _read_json_body()
    access = _access()
    retry = access.settings.retry_after_s
    snapshot = access.snapshot()
    if snapshot is None:
        raise _unavailable("no-data", "No window yet", access.no_data_reason(), retry)
    loaded, why = access.loaded_model(snapshot)
    if loaded is None:
        raise _unavailable("no-model", "No model", why, retry)
    model = loaded.forecaster
    req = parse_predict(body, loaded.expectations)
    if req.times_ns is None or req.values is None:
        points = access.forecast(snapshot, model)[: req.inference_length]
        source = "window"
    else:
        try:
            # Extreme finite values may overflow inside the model: refused just below.
            with np.errstate(over="ignore", invalid="ignore"):
                origin = model.prepare(req.times_ns, req.values)
                times, values = model.predict(origin, req.inference_length)
        except ForecastingError as exc:  # validation already enforces what prepare checks
            raise ProblemError(
                422, "validation-error", "Request body failed validation", str(exc)
            ) from exc
        check_forecast(values, model.target)
        points = [
            {"time": t, "value": v}
            for t, v in zip(format_times(times, model.spec.step_ns), values.tolist(), strict=True)
        ]
        source = "request"
    summary = access.summary(snapshot)
    metrics.observe_prediction(source, len(points))
    payload = {
        "generation": snapshot.generation,
        "model_version": access.model_version(snapshot, model),
        "data_age_ms": access.data_age_ms(snapshot),
        "source": source,
        "window": {"rows": summary.rows, "checksum": summary.checksum},
        "predictions": points,
    }
    return _json(payload, generation=snapshot.generation)


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the worker answers. Touches no shared state."""
    return _json({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """200 with a generation, a model, a usable window and fresh data; else 503 + reason."""
    access = _access()
    state = access.readiness()
    if state.ready:
        body: dict[str, Any] = {"status": "ready", "generation": state.generation}
        if skipped := access.skipped_files():
            body["skipped"] = list(skipped)
        return _json(body, 200, state.generation)
    reason = state.reason.split(":", 1)[0]
    raise ProblemError(
        503,
        "not-ready",
        "Not ready",
        state.reason,
        headers={"Retry-After": str(access.settings.retry_after_s), "X-Not-Ready": reason},
    )


@blueprint.get("/cache")
def cache() -> Response:
    """What this worker serves: generation, pid, rows, time range, offsets, model, checksum."""
    access = _access()
    snapshot = access.snapshot()
    if snapshot is None:
        raise _unavailable(
            "no-data",
            "No window yet",
            access.no_data_reason(),
            access.settings.retry_after_s,
        )
    meta = snapshot.metadata
    summary = access.summary(snapshot)
    try:
        offsets: object = json.loads(meta.get("offsets", "{}"))
    except ValueError:
        offsets = None
    published = str(np.datetime_as_string(np.datetime64(snapshot.published_at_ns, "ns"), unit="ms"))
    expected = meta.get("window_checksum")
    payload = {
        "generation": snapshot.generation,
        "pid": os.getpid(),
        "rows": summary.rows,
        "time_min": summary.time_min,
        "time_max": summary.time_max,
        "offsets": offsets,
        "source": meta.get("source"),
        "state": meta.get("state"),
        "topic": meta.get("topic"),
        "model_version": meta.get("model_version"),
        "model_sha256": meta.get("model_sha256"),
        "published_at": published + "Z",
        "data_age_ms": access.data_age_ms(snapshot),
        "checksum": summary.checksum,
        "checksum_matches": None if expected is None else expected == summary.checksum,
    }
    return _json(payload, generation=snapshot.generation)


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text exposition, aggregated over all workers."""
    body, content_type = metrics.render(_access())
    return Response(body, mimetype=None, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return _json(build_spec(_access().settings))
