"""``POST /predict`` with a model of two lag tiers: intervals (``quantiles``), the tier that
served (``method``), short histories, and the minimum in the 422 below it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scripts.sample_window import sample_table
from tests.webapp._support import ShmWindow, new_shm_window, remove_tree, train_artifact
from tests.webapp.conftest import make_app


@pytest.fixture(scope="module")
def tiered() -> Iterator[ShmWindow]:
    """A window of the sample series served by a model of tiers 336 and 96."""
    win, parent = new_shm_window(train_artifact(tiers=(336, 96)))
    win.publish(1000)
    try:
        yield win
    finally:
        win.close()
        remove_tree(parent)


@pytest.fixture(scope="module")
def client(tiered):
    return make_app(tiered).test_client()


def history(rows: int) -> dict[str, list]:
    table = sample_table(rows)
    times = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in table.column("time").to_pylist()]
    return {"time": times, "demand_mw": table.column("demand_mw").to_pylist()}


def test_the_window_answers_with_quantiles_keyed_as_written(client):
    resp = client.post("/predict", json={"inference_length": 4, "quantiles": [0.9, 0.1, 0.5]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["method"] == "ridge-l336" and body["source"] == "window"
    for point in body["predictions"]:
        q = point["quantiles"]
        assert list(q) == ["0.9", "0.1", "0.5"]
        assert q["0.1"] <= q["0.5"] <= q["0.9"] and q["0.1"] < point["value"] < q["0.9"]
    plain = client.post("/predict", json={"inference_length": 4}).get_json()
    assert [p["value"] for p in plain["predictions"]] == [p["value"] for p in body["predictions"]]
    assert all("quantiles" not in p for p in plain["predictions"])


@pytest.mark.parametrize(
    ("rows", "method"), [(336, "ridge-l336"), (200, "ridge-l96"), (96, "ridge-l96")]
)
def test_short_histories_are_served_by_the_shallower_tier(client, rows, method):
    resp = client.post("/predict", json={"data": history(rows), "quantiles": [0.025, 0.975]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["method"] == method and body["source"] == "request"
    assert all(p["quantiles"]["0.025"] < p["quantiles"]["0.975"] for p in body["predictions"])


def test_below_the_minimum_the_422_names_it(client):
    resp = client.post("/predict", json={"data": history(95)})
    assert resp.status_code == 422
    body = resp.get_json(force=True)
    assert body["errors"][0]["code"] == "too_few_rows"
    assert "at least 96 rows" in body["detail"]


@pytest.mark.parametrize(
    ("levels", "code"),
    [
        ([0.1] * 10, "too_many_items"),
        ([0.1, 0.10], "duplicate_quantiles"),
        ([0.5, 1], "out_of_range"),
        ([0], "out_of_range"),
        (["0.5"], "not_a_number"),
        (0.5, "not_an_array"),
    ],
)
def test_bad_levels_are_a_422_naming_the_field(client, levels, code):
    resp = client.post("/predict", json={"quantiles": levels})
    assert resp.status_code == 422
    assert resp.get_json(force=True)["errors"][0]["code"] == code


@settings(max_examples=40, deadline=None)
@given(levels=st.lists(st.floats(1e-6, 1 - 1e-6), min_size=1, max_size=9, unique=True))
def test_keys_are_decimal_and_values_never_decrease_with_the_level(client, levels):
    body = client.post("/predict", json={"inference_length": 48, "quantiles": levels}).get_json()
    for point in body["predictions"]:
        q = point["quantiles"]
        assert sorted(float(k) for k in q) == sorted(levels)
        assert all("e" not in key for key in q)
        ordered = [q[k] for k in sorted(q, key=float)]
        assert ordered == sorted(ordered)
