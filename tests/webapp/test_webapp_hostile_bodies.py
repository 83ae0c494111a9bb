"""Hostile /predict bodies: deep nesting, extreme numbers, error floods, leaky details.

Each test pins one item of the hardening review: a 4xx naming the problem for every nesting
depth, never a non-JSON 200, a validation cost bounded against a valid body of the same
size, and error details free of server paths and interpreter internals.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import pytest

from bench.validation import EXPECT, FAMILIES, cpu_ms, measure, valid_body
from forecasting import Forecaster
from tests.webapp._rawhttp import strict_json
from tests.webapp.conftest import make_app
from webapp import views
from webapp.errors import ProblemError
from webapp.validation import decode_json, parse_predict

ROWS = 400
START = 962_409_600  # 2000-07-01T00:00:00Z


def series(rows: int = ROWS) -> dict[str, list]:
    times = [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START + 1800 * i)) for i in range(rows)
    ]
    return {"time": times, "demand_mw": [30_000.0 + i for i in range(rows)]}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def body_with(column: str, element: str, rows: int = ROWS) -> bytes:
    """A valid body of ``rows`` rows whose ``column[7]`` is replaced by raw JSON ``element``."""
    data = series(rows)
    data[column][7] = "@@"
    text = json.dumps({"data": data, "inference_length": 3})
    return text.replace('"@@"', element).encode()


def refusal(raw: bytes) -> ProblemError:
    with pytest.raises(ProblemError) as info:
        parse_predict(decode_json(raw), EXPECT)
    return info.value


# -- deep arrays inside data: a 4xx at every depth -------------------------------------------

_LIMIT = sys.getrecursionlimit()
# Every depth around the decoder's limit: the old failure sat in a window a few levels wide.
DEPTHS = sorted({1, 2, 50, 500, 977, *range(_LIMIT - 120, _LIMIT + 20), 5 * _LIMIT})


@pytest.mark.parametrize("column", ["time", "demand_mw"])
def test_an_array_nested_at_any_depth_in_a_row_is_a_4xx(column):
    problems = [refusal(body_with(column, nested(depth))) for depth in DEPTHS]
    assert {p.status for p in problems} == {400, 422}  # the sweep crossed the decoder's limit
    for problem in problems:
        if problem.status == 422:
            assert problem.errors[0].field == f"data.{column}[7]"
            assert "an array of" in problem.errors[0].detail


def test_a_deep_inference_length_is_a_4xx_not_a_recursion_error():
    raws = [b'{"inference_length": ' + nested(depth).encode() + b"}" for depth in DEPTHS]
    problems = [refusal(raw) for raw in raws]
    assert {p.status for p in problems} == {400, 422}
    assert {p.errors[0].code for p in problems if p.status == 422} == {"not_an_integer"}


# -- never a non-JSON 200: an overflowing forecast is refused --------------------------------


def _overflowing_values(model) -> list[float]:
    """Finite values of 1.7e308 of alternating sign: their spread, the model's scale,
    overflows."""
    n = model.min_rows
    return np.where(np.arange(n) % 2 == 0, 1.7e308, -1.7e308).tolist()


def test_a_forecast_that_overflows_is_a_422_and_every_reply_is_strict_json(window):
    window.publish(500)
    app = make_app(window)
    client = app.test_client()
    assert client.post("/predict", json={}).status_code == 200  # the model is loaded
    state = app.extensions["webapp"]
    model = state.models.get(state.view().meta).forecaster
    data = series(model.min_rows)
    data["demand_mw"] = _overflowing_values(model)
    resp = client.post("/predict", json={"data": data, "inference_length": 48})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    body = strict_json(resp.get_data())
    assert body["errors"][0]["code"] == "forecast_not_finite"
    assert body["errors"][0]["field"] == "data.demand_mw"
    assert "overflows" in body["detail"]


def test_a_window_forecast_that_is_not_finite_is_a_503_and_not_ready(window, monkeypatch):
    """Extreme values in the stream can overflow the model on the window itself: the
    generation is unusable (503 problem, /readyz not ready), never a 500 or invalid JSON."""
    window.publish(500)
    window.write_status(generation=window.publisher.generation)
    client = make_app(window, MAX_DATA_AGE_MS="600000").test_client()
    real_predict = Forecaster.predict

    def overflowing(self, origin, steps):
        times, values = real_predict(self, origin, steps)
        return times, values * math.inf

    monkeypatch.setattr(Forecaster, "predict", overflowing)
    resp = client.post("/predict", json={})
    assert resp.status_code == 503, resp.get_data(as_text=True)
    body = strict_json(resp.get_data())
    assert body["type"] == "/problems/window-unusable" and "not finite" in body["detail"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "not finite" in strict_json(ready.get_data())["detail"]


def test_the_encoder_refuses_nan(window):
    """A bug that lets a NaN reach the encoder fails loudly (a logged 500), never a bad body."""
    app = make_app(window)
    with app.test_request_context(), pytest.raises(ValueError, match="JSON"):
        views._json({"value": math.nan})


# -- cost: refusing any body is within a small multiple of accepting a valid one ------------

SIZE = 1_000_000
# Measured worst about 6-8x (a megabyte of nested arrays: half a million lists to build, free
# and pass once through the cyclic collector); before the fix 20x to 40x on the same machine.
BOUND = 12.0


def test_refusing_a_hostile_body_costs_a_small_multiple_of_a_valid_body():
    """CPU per byte of the costliest families against the costliest valid body, same size,
    same test; the valid body is timed before and after, and the lesser time counts."""
    valid = valid_body(SIZE)
    first_ms, status = cpu_ms(valid, repeats=5)
    assert status == 200
    timed = {}
    for name in (
        "unknown_top_level_keys",
        "unknown_keys_under_data",
        "empty_arrays",
        "deep_arrays_as_rows",
    ):
        raw = FAMILIES[name](SIZE)
        ms, status = cpu_ms(raw, repeats=5)
        assert status in {400, 422}
        timed[name] = ms / len(raw)
    per_byte_valid = min(first_ms, cpu_ms(valid, repeats=5)[0]) / len(valid)
    ratios = {name: round(per_byte / per_byte_valid, 2) for name, per_byte in timed.items()}
    assert max(ratios.values()) <= BOUND, ratios


def test_a_flood_of_unknown_keys_lists_twenty_and_counts_the_rest():
    raw = FAMILIES["unknown_top_level_keys"](100_000)
    problem = refusal(raw)
    assert len(problem.errors) == 20
    assert problem.detail.endswith(f"(and {raw.count(b':') - 1} more)")
    data = refusal(FAMILIES["unknown_keys_under_data"](100_000))
    assert len(data.errors) == 20 and {e.code for e in data.errors} == {"unknown_column"}


# -- exposure: no server paths, no interpreter internals -------------------------------------


def test_a_huge_integer_is_refused_in_plain_words():
    with pytest.raises(ProblemError) as info:
        decode_json(b'{"inference_length": ' + b"9" * 5000 + b"}")
    assert info.value.status == 400
    assert "more than 4300 digits" in info.value.detail
    assert "sys." not in info.value.detail and "set_int_max_str_digits" not in info.value.detail


def test_a_missing_model_file_is_named_without_its_directory(window):
    window.publish(500)
    (window.directory / window.model_meta["model_file"]).unlink()
    resp = make_app(window).test_client().post("/predict", json={})
    assert resp.status_code == 503
    detail = strict_json(resp.get_data())["detail"]
    assert window.model_meta["model_file"] in detail and "No such file" in detail
    assert str(window.directory) not in detail and "/" not in detail


def test_every_benchmark_family_is_refused_and_the_reference_accepted():
    result = measure(64_000, repeats=1)
    assert result["valid"]["bytes"] == 64_000
    assert all(row["status"] in {400, 422} for row in result["families"].values())
    assert result["worst"] in FAMILIES and result["worst_ms_per_mb"] > 0
