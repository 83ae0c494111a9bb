"""Validation of /predict bodies: every rejection names the field and the reason."""

from __future__ import annotations

import math

import numpy as np
import pytest

from webapp.errors import ProblemError
from webapp.problem import problem_body
from webapp.timefmt import format_times
from webapp.validation import Expectations, decode_json, parse_predict

STEP = 30 * 60 * 1_000_000_000
EXPECT = Expectations(
    columns=("demand_mw",),
    min_rows=4,
    step_ns=STEP,
    max_rows=50,
    max_inference_length=48,
    default_inference_length=1,
    max_gap_steps=0,
)


def times(n: int, start: str = "2000-06-05T00:00:00", suffix: str = "Z") -> list[str]:
    base = np.datetime64(start, "m")
    return [f"{base + np.timedelta64(30 * i, 'm')}:00{suffix}" for i in range(n)]


def body(n: int = 6, **overrides: object) -> dict[str, object]:
    data = {"time": times(n), "demand_mw": [float(1000 + i) for i in range(n)]}
    out: dict[str, object] = {"index_col": "time", "data": data, "inference_length": 2}
    out.update(overrides)
    return out


def rejected(payload: object, expect: Expectations = EXPECT) -> list[dict[str, str]]:
    with pytest.raises(ProblemError) as info:
        parse_predict(payload, expect)
    assert info.value.status == 422
    assert info.value.slug == "validation-error"
    assert info.value.detail.startswith(info.value.errors[0].field or "body")
    return [e.as_dict() for e in info.value.errors]


def codes(payload: object) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in rejected(payload)}


def test_empty_body_forecasts_from_the_window_with_the_default_length():
    req = parse_predict({}, EXPECT)
    assert req.inference_length == 1 and req.times_ns is None and req.values is None
    assert parse_predict({"inference_length": 48}, EXPECT).inference_length == 48


def test_valid_series_is_returned_sorted_on_the_grid():
    payload = body()
    data = payload["data"]
    assert isinstance(data, dict)
    data["time"] = list(reversed(data["time"]))  # any order is accepted and sorted
    data["demand_mw"] = list(reversed(data["demand_mw"]))
    req = parse_predict(payload, EXPECT)
    assert req.times_ns is not None and req.values is not None
    assert np.all(np.diff(req.times_ns) == STEP)
    assert req.values.tolist() == [1000.0 + i for i in range(6)]
    assert format_times(req.times_ns[:1], STEP) == ["2000-06-05T00:00:00Z"]


def test_offsets_are_converted_to_utc_and_naive_times_read_as_utc():
    shifted = [t.replace("Z", "+02:00") for t in times(6, start="2000-06-05T02:00:00")]
    a = parse_predict(body(data={"time": shifted, "demand_mw": [1.0] * 6}), EXPECT)
    b = parse_predict(body(data={"time": times(6, suffix=""), "demand_mw": [1.0] * 6}), EXPECT)
    assert a.times_ns is not None and b.times_ns is not None
    assert a.times_ns.tolist() == b.times_ns.tolist()


def test_duplicate_timestamps_are_a_clear_422_not_a_crash():
    data = {"time": [times(1)[0]] * 6, "demand_mw": [1.0] * 6}
    (error,) = rejected(body(data=data))
    assert error["code"] == "duplicate_timestamps"
    assert error["field"] == "data.time[1]" and error["pointer"] == "#/data/time/1"
    assert "2000-06-05T00:00:00Z appears at rows 0 and 1" in error["detail"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ([1, 2], {("", "not_an_object")}),
        ({"foo": 1}, {("foo", "unknown_field")}),
        ({"inference_length": 0}, {("inference_length", "out_of_range")}),
        ({"inference_length": 49}, {("inference_length", "out_of_range")}),
        ({"inference_length": True}, {("inference_length", "not_an_integer")}),
        ({"inference_length": 2.5}, {("inference_length", "not_an_integer")}),
        ({"inference_length": "3"}, {("inference_length", "not_an_integer")}),
        ({"index_col": "time"}, {("index_col", "requires_data")}),
        (body(index_col=7), {("index_col", "not_a_string")}),
        (body(data=[1, 2]), {("data", "not_an_object")}),
        (body(data={"time": times(6)}), {("data.demand_mw", "missing_column")}),
        (body(data={"demand_mw": [1.0] * 6}), {("data.time", "missing_column")}),
        (
            body(data={"time": times(6), "demand_mw": [1.0] * 6, "extra": [1] * 6}),
            {("data.extra", "unknown_column")},
        ),
        (body(data={"time": times(6), "demand_mw": "1,2"}), {("data.demand_mw", "not_an_array")}),
        (
            body(data={"time": times(6), "demand_mw": [1.0] * 5}),
            {("data.demand_mw", "length_mismatch")},
        ),
        (
            body(data={"time": times(51), "demand_mw": [1.0] * 51}),
            {("data.time", "too_many_rows")},
        ),
        (body(data={"time": times(3), "demand_mw": [1.0] * 3}), {("data.time", "too_few_rows")}),
        (
            body(data={"time": [*times(5), "yesterday"], "demand_mw": [1.0] * 6}),
            {("data.time[5]", "unparseable_time")},
        ),
        (
            body(data={"time": [*times(5), 12345], "demand_mw": [1.0] * 6}),
            {("data.time[5]", "unparseable_time")},
        ),
        (
            body(data={"time": [*times(5), "3000-01-01T00:00:00Z"], "demand_mw": [1.0] * 6}),
            {("data.time[5]", "unparseable_time")},
        ),
        (
            body(data={"time": [*times(5), times(6, suffix="")[5]], "demand_mw": [1.0] * 6}),
            {("data.time[5]", "mixed_timezones")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [1.0] * 5 + ["x"]}),
            {("data.demand_mw[5]", "not_a_number")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [None] + [1.0] * 5}),
            {("data.demand_mw[0]", "not_a_number")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [True] + [1.0] * 5}),
            {("data.demand_mw[0]", "not_a_number")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [1.0, math.nan] + [1.0] * 4}),
            {("data.demand_mw[1]", "not_finite")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [1.0] * 5 + [-math.inf]}),
            {("data.demand_mw[5]", "not_finite")},
        ),
        (
            body(data={"time": times(6), "demand_mw": [10**400] + [1.0] * 5}),
            {("data.demand_mw[0]", "not_finite")},
        ),
        (
            body(data={"time": times(7)[:3] + times(7)[4:], "demand_mw": [1.0] * 6}),
            {("data.time[3]", "irregular_spacing")},
        ),
        (
            body(
                data={
                    "time": [*times(5), "2000-06-05T02:31:00Z"],
                    "demand_mw": [1.0] * 6,
                }
            ),
            {("data.time[5]", "irregular_spacing")},
        ),
    ],
)
def test_each_bad_input_names_its_field_and_reason(payload, expected):
    assert codes(payload) == expected


def test_several_errors_are_reported_together():
    found = codes({"inference_length": 0, "bogus": 1, "other": 2})
    assert found == {
        ("inference_length", "out_of_range"),
        ("bogus", "unknown_field"),
        ("other", "unknown_field"),
    }


def test_gaps_within_the_policy_are_interpolated():
    loose = Expectations(
        columns=EXPECT.columns,
        min_rows=EXPECT.min_rows,
        step_ns=STEP,
        max_rows=EXPECT.max_rows,
        max_inference_length=48,
        default_inference_length=1,
        max_gap_steps=1,
    )
    t = times(7)
    req = parse_predict(
        body(data={"time": t[:3] + t[4:], "demand_mw": [0.0, 1.0, 2.0, 4.0, 5.0, 6.0]}), loose
    )
    assert req.values is not None and req.values.tolist() == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
)
def test_bad_json_is_a_400_problem(raw, words):
    with pytest.raises(ProblemError) as info:
        decode_json(raw)
    assert info.value.status == 400 and words in info.value.detail


def test_nan_literals_decode_so_validation_can_name_the_field():
    value = decode_json(b'{"x": NaN}')
    assert isinstance(value, dict) and math.isnan(value["x"])


def test_error_lists_and_echoed_names_stay_small():
    payload = {f"field-{i}-" + "x" * 500: i for i in range(100)}
    with pytest.raises(ProblemError) as info:
        parse_predict(payload, EXPECT)
    assert len(info.value.errors) == 20
    assert "(and 99 more)" in info.value.detail
    assert all(len(e.field) <= 64 for e in info.value.errors)
    assert codes(body(index_col="t" * 65)) == {("index_col", "not_a_string")}


def test_a_name_with_a_lone_surrogate_is_named_in_a_strict_json_problem():
    with pytest.raises(ProblemError) as info:
        parse_predict(decode_json(b'{"\\ud800": 1}'), EXPECT)
    body = problem_body(info.value, "/predict")
    assert body.isascii() and b"\\ud800" in body
