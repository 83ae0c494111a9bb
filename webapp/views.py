"""HTTP endpoints. Contracts: `docs/web-api.md` and ``/openapi.json``."""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec
import numpy as np
from flask import Blueprint, Response, current_app, request
from gunicorn.http.errors import NoMoreData, ParseException
from werkzeug.exceptions import ClientDisconnected

from shm import CorruptGenerationError
from webapp import metrics, shard_route
from webapp.cache_info import CacheInfo
from webapp.errors import FieldError, ProblemError
from webapp.forecasts import Forecast, series_forecast
from webapp.model_cache import LoadedModel, NoModelError
from webapp.openapi import build_spec
from webapp.predict_body import check_json, read_predict
from webapp.schemas import PredictResponse, SeriesItem, SeriesList, WindowRef
from webapp.series_catalog import SeriesCatalog, SeriesRows
from webapp.series_query import parse_series_query
from webapp.snapshot_view import (
    SeriesRequiredError,
    SnapshotView,
    UnknownSeriesError,
    UnusableWindowError,
)
from webapp.timefmt import format_times
from webapp.validation import validation_problem
from webapp.worker_state import WorkerState

__all__ = ["GENERATION_HEADER", "blueprint"]

GENERATION_HEADER = "X-Cache-Generation"

blueprint = Blueprint("api", __name__)
_encode = msgspec.json.Encoder().encode


def _state() -> WorkerState:
    state: WorkerState = current_app.extensions["webapp"]
    return state


def _json(payload: dict[str, Any], status: int = 200, generation: int | None = None) -> Response:
    """A JSON response. NaN and Infinity are not JSON: a payload holding one raises
    ``ValueError`` (a 500 in the log) rather than reaching a client as an invalid body."""
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
    return _response(body, status, generation)


def _response(body: bytes, status: int = 200, generation: int | None = None) -> Response:
    response = Response(body, status=status, mimetype="application/json")
    if generation is not None:
        response.headers[GENERATION_HEADER] = str(generation)
    response.headers["Cache-Control"] = "no-store"
    return response


def _unavailable(state: WorkerState, slug: str, title: str, detail: str) -> ProblemError:
    retry = {"Retry-After": str(state.settings.retry_after_s)}
    return ProblemError(503, slug, title, detail, headers=retry)


def _view(state: WorkerState) -> SnapshotView:
    """The newest generation, or the 503 ``no-data``."""
    view = state.view()
    if view is None:
        raise _unavailable(state, "no-data", "No window yet", state.source.no_data_reason())
    return view


def _model(state: WorkerState, view: SnapshotView) -> LoadedModel:
    """The model the generation names, or the 503 ``no-model``."""
    try:
        return state.models.get(view.meta)
    except NoModelError as exc:
        raise _unavailable(state, "no-model", "No model", exc.reason) from None


def _unusable(state: WorkerState, reason: str) -> ProblemError:
    return _unavailable(state, "window-unusable", "Cached window cannot be forecast", reason)


def _series(state: WorkerState, view: SnapshotView, series_id: str | None) -> SeriesRows:
    """The series asked for (the window's only one for None), or the 404 ``unknown-series``,
    the 422 naming ``series_id``, or the 503 ``window-unusable``."""
    try:
        return view.series(series_id)
    except UnknownSeriesError as exc:
        raise ProblemError(
            404,
            "unknown-series",
            "Unknown series",
            f"the window holds no series {exc.series_id!r} (generation {view.generation} "
            f"holds {exc.count}; GET /series lists them)",
        ) from None
    except SeriesRequiredError as exc:
        raise validation_problem(
            FieldError(
                "series_id",
                "requires_series_id",
                f"the window holds {exc.count} series: series_id must name one "
                "(GET /series lists them)",
            )
        ) from None
    except UnusableWindowError as exc:
        raise _unusable(state, exc.reason) from None


def _window_forecast(
    state: WorkerState, view: SnapshotView, model: LoadedModel, rows: SeriesRows
) -> Forecast:
    """The series' forecast, or the 503 ``window-unusable``."""
    state.forecast_wanted()
    try:
        return view.forecast_of(model, rows)
    except UnusableWindowError as exc:
        raise _unusable(state, exc.reason) from None


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


def _read_body() -> bytes:
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
    return raw


@blueprint.post("/predict")
def predict() -> Response:
    """Forecast a series of the cached window or the caller's series.

    The generation's metadata names the model; that one :class:`LoadedModel` supplies the
    limits the body is validated against and the forecaster that answers it. The body is
    decoded and validated in one pass (``read_predict``) and its series used as it is. For
    a series of the window, the model's full-horizon output is computed and encoded on the
    first request for it and memoized (``SnapshotView.forecast_of``); for caller data the
    model runs on every request.
    """
    raw = _read_body()
    # A sharded pod sends a series another shard owns there, before touching the window.
    if (elsewhere := shard_route.redirect_for(raw)) is not None:
        return elsewhere
    state = _state()
    try:
        view = _view(state)
        model = _model(state, view)
    except ProblemError:
        check_json(raw)  # a malformed body is a 400 whatever the server's state
        raise
    req = read_predict(raw, model.expectations)
    source: Literal["window", "request"]
    series_id = req.series_id
    if req.times_ns is None or req.values is None:
        rows = _series(state, view, series_id)
        forecast = _window_forecast(state, view, model, rows)
        points = forecast.answer(model.forecaster, req.inference_length, req.quantiles)
        method = forecast.method
        source, series_id = "window", rows.series_id
    else:
        points, method = series_forecast(
            model.forecaster, req.times_ns, req.values, req.inference_length, req.quantiles
        )
        source = "request"
    summary = view.summary()
    metrics.observe_prediction(source, len(points))
    payload = PredictResponse(
        generation=view.generation,
        model_version=view.model_version(model),
        data_age_ms=state.data_age_ms(view),
        source=source,
        method=method,
        series_id=series_id,
        window=WindowRef(rows=summary.rows, checksum=summary.checksum),
        predictions=points.json(),
    )
    return _response(_encode(payload), generation=view.generation)


@blueprint.get("/series")
def series() -> Response:
    """The window's series in id order, ``limit`` after the id ``after`` (docs/web-api.md)."""
    query = parse_series_query(request.query_string)
    state = _state()
    view = _view(state)
    catalog = view.catalog()
    if catalog.problem is not None:
        raise _unusable(state, catalog.problem)
    try:
        listing = _series_list(catalog, query.after, query.limit)
    except CorruptGenerationError as exc:  # a segment file altered after publication
        raise _unusable(state, str(exc)) from None
    body = _encode(listing)
    return _response(body, generation=view.generation)


def _series_list(catalog: SeriesCatalog, after: str | None, limit: int) -> SeriesList:
    page = catalog.page(after, limit)
    firsts = _iso([item.time_min_ns for item in page.items])
    lasts = _iso([item.time_max_ns for item in page.items])
    items = [
        SeriesItem(item.series_id, item.rows, first, last)
        for item, first, last in zip(page.items, firsts, lasts, strict=True)
    ]
    return SeriesList(total=page.total, items=items, next_after=page.next_after)


def _iso(times_ns: list[int | None]) -> list[str | None]:
    """ISO-8601 UTC of each time; all None when the window has no time column."""
    known = [t for t in times_ns if t is not None]
    if len(known) != len(times_ns) or not known:
        return [None] * len(times_ns)
    return list(format_times(np.array(known, dtype=np.int64), 1_000_000_000))


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the worker answers. Touches no shared state."""
    return _json({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> Response:
    """200 with a generation, a model, a usable window and fresh data; else 503 + reason."""
    state = _state()
    verdict = state.readiness()
    if verdict.ready:
        body: dict[str, Any] = {"status": "ready", "generation": verdict.generation}
        if skipped := state.source.skipped_files():
            body["skipped"] = list(skipped)
        return _json(body, 200, verdict.generation)
    reason = verdict.reason.split(":", 1)[0]
    raise ProblemError(
        503,
        "not-ready",
        "Not ready",
        verdict.reason,
        headers={"Retry-After": str(state.settings.retry_after_s), "X-Not-Ready": reason},
    )


@blueprint.get("/cache")
def cache() -> Response:
    """What this worker serves: generation, pid, rows, time range, offsets, model, checksum."""
    state = _state()
    view = _view(state)
    info = CacheInfo.of(view, state.data_age_ms(view))
    return _json(info.as_dict(), generation=view.generation)


@blueprint.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus text exposition, aggregated over all workers."""
    body, content_type = metrics.render(_state())
    return Response(body, mimetype=None, content_type=content_type)


@blueprint.get("/openapi.json")
def openapi() -> Response:
    return _json(build_spec(_state().settings))
