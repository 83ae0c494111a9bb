"""Invalid ``/predict`` requests and the answer the service documents for each.

Each :class:`BadCase` starts from a valid series and breaks exactly one thing, so the
expected answer is unambiguous: the HTTP status, and for a 422 the field error ``code`` the
problem+json body must list. The ``bad`` user counts a case as a success only when the
server answers exactly that; anything else (a 5xx above all) is a failure.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from locustfiles._series import UTC_ZONE, format_times, synthetic_request

__all__ = ["JSON", "BadCase", "bad_cases"]

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class BadCase:
    """One invalid request: ``name`` (also the stats label), raw ``body`` and
    ``content_type``; the expected ``status`` and, for 422, the field error ``code``."""

    name: str
    body: bytes
    content_type: str
    status: int
    code: str | None


def _dumps(body: object) -> bytes:
    # NaN and Infinity are not JSON but clients send them; the server must name the field.
    return json.dumps(body, separators=(",", ":"), allow_nan=True).encode()


def bad_cases(
    *,
    rows: int,
    step_ns: int,
    column: str,
    max_rows: int,
    max_body_bytes: int,
    index_col: str = "time",
) -> tuple[BadCase, ...]:
    """Every invalid case of the service's contract, each built from a valid series of
    ``rows`` rows (a length the model accepts).

    ``max_rows`` / ``max_body_bytes`` are the server's ``MAX_ROWS`` / ``MAX_BODY_BYTES``; the
    too-many-rows case is left out when such a body would already exceed the byte limit
    (the server would then rightly answer 413, not 422).
    """
    rng = random.Random(rows * 7919 + step_ns)
    base = synthetic_request(
        rng, rows=rows, step_ns=step_ns, zone=UTC_ZONE, column=column, inference_length=1
    )
    data = base.body["data"]
    assert isinstance(data, dict)
    times: list[str] = list(data[index_col])
    values: list[float] = list(data[column])
    last = base.last_time_ns or 0

    def series(t: list[str], v: list[object], **extra: object) -> dict[str, object]:
        body: dict[str, object] = {
            "index_col": index_col,
            "data": {index_col: t, column: v},
            "inference_length": 1,
        }
        body.update(extra)
        return body

    def case(name: str, body: object, code: str) -> BadCase:
        return BadCase(name, _dumps(body), JSON, 422, code)

    mid = rows // 2
    off_grid = format_times([last - step_ns // 2], UTC_ZONE)[0]
    naive = times[mid].removesuffix("Z")
    cases = [
        case(
            "identical_timestamps", series([times[0]] * rows, list(values)), "duplicate_timestamps"
        ),
        case(
            "duplicate_timestamp",
            series([*times[:mid], times[mid - 1], *times[mid + 1 :]], list(values)),
            "duplicate_timestamps",
        ),
        case(
            "unparseable_time",
            series([*times[:mid], "yesterday", *times[mid + 1 :]], list(values)),
            "unparseable_time",
        ),
        case(
            "mixed_timezones",
            series([*times[:mid], naive, *times[mid + 1 :]], list(values)),
            "mixed_timezones",
        ),
        case("off_grid_time", series([*times[:-1], off_grid], list(values)), "irregular_spacing"),
        case("too_few_rows", series(times[:3], list(values[:3])), "too_few_rows"),
        case(
            "missing_column",
            {"index_col": index_col, "data": {index_col: times}, "inference_length": 1},
            "missing_column",
        ),
        case(
            "unknown_column",
            {
                "index_col": index_col,
                "data": {index_col: times, column: values, "extra": values},
                "inference_length": 1,
            },
            "unknown_column",
        ),
        case("non_numeric_value", series(times, [*values[:-1], "12.5"]), "not_a_number"),
        case("nan_value", series(times, [*values[:-1], float("nan")]), "not_finite"),
        case("infinite_value", series(times, [float("inf"), *values[1:]]), "not_finite"),
        case("length_mismatch", series(times, list(values[:-1])), "length_mismatch"),
        case(
            "inference_length_zero", series(times, list(values), inference_length=0), "out_of_range"
        ),
        case("inference_length_string", {"inference_length": "3"}, "not_an_integer"),
        case("unknown_field", {"inference_length": 1, "horizon": 3}, "unknown_field"),
        case("index_col_without_data", {"index_col": index_col}, "requires_data"),
        case("not_an_object", [1, 2, 3], "not_an_object"),
        BadCase("bad_json", b'{"inference_length": ', JSON, 400, None),
        BadCase("wrong_content_type", b"{}", "text/plain", 415, None),
        BadCase(
            "body_too_large",
            b'{"pad":"' + b"x" * max_body_bytes + b'"}',
            JSON,
            413,
            None,
        ),
    ]
    many = max_rows + 1
    first = last - (rows - 1) * step_ns
    big_times = format_times([first + i * step_ns for i in range(many)], UTC_ZONE)
    big = _dumps(series(big_times, [1000.0] * many))
    if len(big) <= max_body_bytes:
        cases.append(BadCase("too_many_rows", big, JSON, 422, "too_many_rows"))
    return tuple(cases)
