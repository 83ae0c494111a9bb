"""The JSON bodies of the API as msgspec types: one definition decodes requests, encodes
responses and generates the schemas of ``/openapi.json`` (:mod:`webapp.openapi`).

Limits that depend on the settings or the loaded model (the largest ``inference_length``,
the row limits) are not part of the types: validation checks them against
:class:`webapp.validation.Expectations` and the OpenAPI builder writes them into the schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import UNSET, Meta, Raw, Struct, UnsetType

from contract.series import MAX_SERIES_ID_BYTES

__all__ = [
    "MAX_NAME",
    "MAX_QUANTILES",
    "PREDICT_FIELDS",
    "SERIES_PAGE_DEFAULT",
    "SERIES_PAGE_MAX",
    "VALIDATION_CODES",
    "Column",
    "FieldErrorDoc",
    "Point",
    "PredictBody",
    "PredictResponse",
    "Problem",
    "SeriesItem",
    "SeriesList",
    "WindowRef",
]

MAX_NAME = 64
MAX_QUANTILES = 9
# GET /series: items per page when the query gives no `limit`, and the largest `limit`.
SERIES_PAGE_DEFAULT = 100
SERIES_PAGE_MAX = 1000

# The codes of ``errors[].code`` in a 422 (webapp.validation raises each of them).
VALIDATION_CODES = (
    "not_an_object",
    "unknown_field",
    "not_an_integer",
    "out_of_range",
    "requires_data",
    "not_a_string",
    "missing_column",
    "unknown_column",
    "not_an_array",
    "length_mismatch",
    "too_many_rows",
    "too_few_rows",
    "unparseable_time",
    "mixed_timezones",
    "not_a_number",
    "not_finite",
    "forecast_not_finite",
    "duplicate_timestamps",
    "irregular_spacing",
    "too_many_items",
    "duplicate_quantiles",
    "invalid_series_id",
    "requires_series_id",
    "repeated_parameter",
)

_STEPS = "steps to forecast; also bounded by the model's horizon"
_POINTS = {"type": "array", "items": {"$ref": "#/components/schemas/Point"}}

# One column of ``data``: the index column holds ISO-8601 strings, the model's column numbers.
Column = list[str | float]


_SERIES_ID = (
    "the series to forecast from the cached window (GET /series lists them): required when "
    f"the window holds more than one series; 1 to {MAX_SERIES_ID_BYTES} bytes of UTF-8. With "
    "data it only labels the answer"
)


class PredictBody(Struct, forbid_unknown_fields=True):
    """{} forecasts from the cached window (its one series; with several, name one in
    series_id). With data, the series must have exactly the index column and the model's
    value column, unique ISO-8601 times (all with an offset, or all without = UTC) on the
    model's calendar, at least the model's minimum history and at most the row limit, finite
    numbers. With quantiles, each prediction carries those interval bounds."""

    inference_length: (
        Annotated[
            int, Meta(ge=1, description="steps to forecast; also bounded by the model's horizon")
        ]
        | UnsetType
    ) = UNSET
    index_col: (
        Annotated[
            str,
            Meta(min_length=1, max_length=MAX_NAME, description="the column holding the times"),
        ]
        | UnsetType
    ) = UNSET
    data: (
        Annotated[
            dict[str, Column],
            Meta(max_length=16, description="column name -> array: the times and the values"),
        ]
        | UnsetType
    ) = UNSET
    quantiles: (
        Annotated[
            list[Annotated[float, Meta(gt=0, lt=1)]],
            Meta(
                max_length=MAX_QUANTILES,
                description="levels of the conformal interval bounds to return with each "
                "point, each in (0, 1), distinct; keyed in the answer as written in decimal",
            ),
        ]
        | UnsetType
    ) = UNSET
    series_id: (
        Annotated[str, Meta(min_length=1, max_length=MAX_SERIES_ID_BYTES, description=_SERIES_ID)]
        | UnsetType
    ) = UNSET


# The fields of a body, in the order error messages list them.
PREDICT_FIELDS: tuple[str, ...] = PredictBody.__struct_fields__


class Point(Struct, omit_defaults=True):
    """One forecast step; ``quantiles`` when the request asked for them."""

    time: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
    value: float
    quantiles: dict[str, float] | UnsetType = UNSET


class WindowRef(Struct):
    """The shared window of the generation that answered."""

    rows: int
    checksum: str


class PredictResponse(Struct):
    """A forecast: the generation and model that answered, the age of the data, the tier
    of the model that served it (``method``), the points."""

    generation: int
    model_version: str | None
    data_age_ms: int
    source: Literal["window", "request"]
    method: str
    series_id: Annotated[
        str | None,
        Meta(
            description="the series forecast: the one asked for or the window's only one; "
            "with caller data, the series_id given (null without)"
        ),
    ]
    window: WindowRef
    predictions: Annotated[
        Raw,
        Meta(extra_json_schema={"type": "array", "items": {"$ref": "#/components/schemas/Point"}}),
    ]


class SeriesItem(Struct):
    """One series of the window: its id, rows and first and last times (null without rows)."""

    series_id: str
    rows: int
    time_min: Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]
    time_max: Annotated[str | None, Meta(extra_json_schema={"format": "date-time"})]


class SeriesList(Struct):
    """One page of the window's series in id order (the code point order of the ids, which
    is the byte order of their UTF-8); ask for the next page with after=next_after, null on
    the last page."""

    total: int
    items: list[SeriesItem]
    next_after: str | None


class FieldErrorDoc(Struct):
    """One field error of a 422."""

    field: str
    pointer: str
    code: Annotated[str, Meta(extra_json_schema={"enum": list(VALIDATION_CODES)})]
    detail: str


class Problem(Struct, kw_only=True):
    """An RFC 9457 problem (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | UnsetType = UNSET
    errors: list[FieldErrorDoc]
