"""The OpenAPI 3.1 description served at ``/openapi.json``. Its schemas are generated from
the types that decode requests and encode responses (:mod:`webapp.schemas`), and the limits
from the settings are written into them, so the documented limits are the enforced ones.
Tests compare it with the app's routes and with the statuses the server actually returns."""

from __future__ import annotations

from typing import Any

import msgspec

from contract.series import MAX_SERIES_ID_BYTES
from webapp.cache_info import cache_fields
from webapp.config import Settings
from webapp.schemas import (
    SERIES_PAGE_DEFAULT,
    SERIES_PAGE_MAX,
    VALIDATION_CODES,
    Point,
    PredictBody,
    PredictResponse,
    Problem,
    SeriesList,
)

__all__ = ["PROBLEM_TYPES", "build_spec"]

_REF = "#/components/schemas/{name}"

PROBLEM_TYPES: dict[str, str] = {
    "invalid-json": "400: the body is not UTF-8 JSON (or repeats a key in an object)",
    "bad-request": "400: the request is malformed at the HTTP level (framing, chunked body)",
    "not-found": "404: no such path",
    "unknown-series": "404: the window holds no series with the series_id given",
    "method-not-allowed": "405: the path exists but not for this method (see Allow)",
    "payload-too-large": "413: the body exceeds MAX_BODY_BYTES",
    "unsupported-media-type": "415: Content-Type is not application/json",
    "validation-error": "422: the JSON does not satisfy the schema; `errors` lists each field",
    "misdirected-request": "421: a redirected request reached a shard that does not own its "
    "series (the shards' SHARD_MAP settings disagree)",
    "no-data": "503: nothing has been published yet",
    "no-model": "503: the current generation names no loadable model",
    "window-unusable": "503: the cached window cannot feed the model (too short, irregular)",
    "not-ready": "503 from /readyz: restoring, stale, no model, no data or insufficient data",
    "internal-error": "500: a server fault (never caused by input); details are in the log",
    "uri-too-long": "414 from Gunicorn: request line longer than 4096 bytes",
    "header-fields-too-large": "431 from Gunicorn: too many or too large header fields",
    "forbidden": "403 from Gunicorn: a forbidden proxy request",
    "expectation-failed": "417 from Gunicorn: an unsupported Expect header",
    "not-implemented": "501 from Gunicorn: a transfer coding it does not know (RFC 9112 6.1)",
    "http-error": "another HTTP-level error",
}

_VALIDATION_CODES = list(VALIDATION_CODES)


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": responses}}


def build_spec(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document for these settings."""
    generation_header = {
        "X-Cache-Generation": {
            "description": "generation of the window that answered",
            "schema": {"type": "integer"},
        }
    }
    retry_after = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    predict_responses = {
        "200": {
            **_ok({"$ref": "#/components/schemas/PredictResponse"}),
            "headers": generation_header,
        },
        "307": {
            "description": (
                "sharded deployment (SHARD_MAP): the series belongs to another shard; repeat "
                "the request (same method and body) at Location"
            ),
            "headers": {
                "Location": {"description": "the owning shard's URL", "schema": {"type": "string"}},
                "X-Shard-Partition": {
                    "description": "the series' partition",
                    "schema": {"type": "integer"},
                },
            },
        },
        "400": _problem("invalid JSON, or a malformed chunked body"),
        "413": _problem(f"body larger than {settings.max_body_bytes} bytes"),
        "404": _problem("the window holds no series with this series_id (unknown-series)"),
        "415": _problem("Content-Type is not application/json"),
        "421": _problem("a redirected request reached a shard that does not own its series"),
        "422": _problem(
            "validation failed, or the window holds several series and the body names none"
            " (requires_series_id); `errors[].code` is one of " + ", ".join(_VALIDATION_CODES)
        ),
        "503": {
            **_problem("no data, no model, or the window cannot be forecast"),
            "headers": retry_after,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "shm-forecast",
            "version": "1",
            "description": (
                "Forecasts from one live window shared by every worker. Every error is "
                "application/problem+json (RFC 9457) with `type` = /problems/<slug>: "
                + "; ".join(f"{k}: {v}" for k, v in PROBLEM_TYPES.items())
            ),
        },
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Forecast the next inference_length steps",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PredictRequest"}
                            }
                        },
                    },
                    "responses": predict_responses,
                }
            },
            "/series": {
                "get": {
                    "summary": "The window's series in id order, a page at a time",
                    "parameters": _series_parameters(),
                    "responses": {
                        "200": {
                            **_ok({"$ref": "#/components/schemas/SeriesList"}),
                            "headers": generation_header,
                        },
                        "422": _problem(
                            "a query parameter is invalid, repeated or unknown; "
                            "`errors[].field` names it"
                        ),
                        "503": {
                            **_problem(
                                "nothing published yet, or the window's series are unusable"
                            ),
                            "headers": retry_after,
                        },
                    },
                }
            },
            "/healthz": _get("Liveness", {"200": _ok({"type": "object"})}),
            "/readyz": _get(
                "Readiness: a generation, a model and data younger than MAX_DATA_AGE_MS",
                {
                    "200": {**_ok({"type": "object"}), "headers": generation_header},
                    "503": {
                        **_problem("not ready; detail gives the reason"),
                        "headers": retry_after,
                    },
                },
            ),
            "/cache": _get(
                "The window this worker serves",
                {
                    "200": {
                        **_ok({"$ref": "#/components/schemas/Cache"}),
                        "headers": generation_header,
                    },
                    "503": _problem("nothing published yet"),
                },
            ),
            "/metrics": _get(
                "Prometheus metrics aggregated over workers",
                {"200": {"description": "text exposition", "content": {"text/plain": {}}}},
            ),
            "/openapi.json": _get("This document", {"200": _ok({"type": "object"})}),
            "/docs": _get(
                "This document as an interactive page (Swagger UI, served by this app)",
                {"200": {"description": "HTML page", "content": {"text/html": {}}}},
            ),
        },
        "components": {"schemas": _schemas(settings)},
    }


def _series_parameters() -> list[dict[str, Any]]:
    id_schema = {"type": "string", "minLength": 1, "maxLength": MAX_SERIES_ID_BYTES}
    return [
        {
            "name": "limit",
            "in": "query",
            "description": "most series in the page",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": SERIES_PAGE_MAX,
                "default": SERIES_PAGE_DEFAULT,
            },
        },
        {
            "name": "after",
            "in": "query",
            "description": "list the series whose id sorts after this one (the previous "
            f"page's next_after); 1 to {MAX_SERIES_ID_BYTES} bytes of UTF-8",
            "schema": id_schema,
        },
    ]


def _schemas(settings: Settings) -> dict[str, Any]:
    """The component schemas, generated from :mod:`webapp.schemas`; only the limits that
    come from the settings are written in."""
    _, schemas = msgspec.json.schema_components(
        [PredictBody, PredictResponse, Point, Problem, SeriesList], ref_template=_REF
    )
    request = schemas.pop(PredictBody.__name__)
    request["description"] = " ".join(request["description"].split()) + (
        f" Gaps of up to {settings.max_gap_steps} steps are interpolated; at most"
        f" {settings.max_rows} rows."
    )
    length = request["properties"]["inference_length"]
    length["maximum"] = settings.max_inference_length
    length["default"] = settings.default_inference_length
    request["properties"]["index_col"]["default"] = "time"
    schemas["PredictRequest"] = request
    problem_type = schemas["Problem"]["properties"]["type"]
    problem_type["enum"] = [f"/problems/{k}" for k in PROBLEM_TYPES]
    schemas["Cache"] = {"type": "object", "properties": {name: {} for name in cache_fields()}}
    for schema in schemas.values():
        schema.pop("title", None)
        if "description" in schema:
            schema["description"] = " ".join(schema["description"].split())
    return schemas
