"""Windows of many series: ``GET /series``, ``POST /predict`` with ``series_id``, the series
count of ``/cache`` and ``/metrics``, on a real shm directory (Flask's client) and under a
real Gunicorn; each published inline and in segments (``window`` is parametrized).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import webapp.snapshot_view
from contract.series import DEFAULT_SERIES_ID, segment_of
from scripts.sample_window import sample_table
from shm import Reader
from tests.webapp._bodies import series_ids
from tests.webapp._support import (
    GunicornServer,
    ShmWindow,
    new_shm_window,
    remove_tree,
    shm_window,
)
from tests.webapp.conftest import make_app
from webapp.forecasts import Predictions

PROBLEM = "application/problem+json"
LAYOUTS = ["inline", "segmented"]
HORIZON = 48
# Three series long enough for the model (336 rows), ending at different times.
PARTS = {"meter:1": (400, 1000), "météo/2": (500, 2500), "z": (1000, None)}


@pytest.fixture(params=LAYOUTS)
def window(artifact: bytes, request: pytest.FixtureRequest) -> Iterator[ShmWindow]:
    """An shm directory with the model installed, publishing many series in one layout."""
    with shm_window(artifact, request.param) as win:
        yield win


def parts() -> dict:
    return {sid: sample_table(rows, end=end) for sid, (rows, end) in PARTS.items()}


def problem(resp, status: int, slug: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json(force=True)
    assert body["type"] == f"/problems/{slug}" and body["status"] == status and body["detail"]
    return body


def test_each_series_is_forecast_as_if_it_were_published_alone(window):
    gen = window.publish_series(parts())
    client = make_app(window).test_client()
    together = {}
    for sid in PARTS:
        resp = client.post("/predict", json={"series_id": sid, "inference_length": HORIZON})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        body = resp.get_json()
        assert (body["series_id"], body["source"], body["generation"]) == (sid, "window", gen)
        assert body["window"]["rows"] == sum(rows for rows, _ in PARTS.values())
        together[sid] = body["predictions"]
    for sid, table in parts().items():
        window.publish_table(table)  # the series alone, as a single-series window
        alone = client.post("/predict", json={"inference_length": HORIZON}).get_json()
        assert alone["series_id"] == DEFAULT_SERIES_ID
        assert alone["predictions"] == together[sid], sid
    assert len({json.dumps(p) for p in together.values()}) == len(PARTS)


def test_many_series_and_no_series_id_is_a_422_naming_the_field(window):
    window.publish_series(parts())
    client = make_app(window).test_client()
    for body in ({}, {"inference_length": 3}):
        error = problem(client.post("/predict", json=body), 422, "validation-error")
        (field,) = error["errors"]
        assert (field["field"], field["code"]) == ("series_id", "requires_series_id")
        assert "3 series" in field["detail"]


def test_an_unknown_series_is_a_404_naming_it(window):
    window.publish_series(parts())
    client = make_app(window).test_client()
    for sid in ("meter:3", "default", "Z"):
        body = problem(client.post("/predict", json={"series_id": sid}), 404, "unknown-series")
        assert repr(sid) in body["detail"] and body["errors"] == []


def test_caller_data_needs_no_series_id_and_is_labelled_by_one(window):
    window.publish_series(parts())
    client = make_app(window).test_client()
    frame = sample_table(400).to_pandas()
    data = {
        "time": [t.isoformat() for t in frame["time"]],
        "demand_mw": frame["demand_mw"].tolist(),
    }
    plain = client.post("/predict", json={"data": data}).get_json()
    assert (plain["source"], plain["series_id"]) == ("request", None)
    # Any valid id labels the answer, held by the window or not: the caller's data answers.
    labelled = client.post("/predict", json={"data": data, "series_id": "mine"}).get_json()
    assert labelled["series_id"] == "mine" and labelled["predictions"] == plain["predictions"]


def test_a_single_series_window_still_answers_an_empty_body(window):
    window.publish_series({"only": sample_table(500)})
    client = make_app(window).test_client()
    empty = client.post("/predict", json={}).get_json()
    named = client.post("/predict", json={"series_id": "only"}).get_json()
    assert empty["series_id"] == named["series_id"] == "only"
    assert empty["predictions"] == named["predictions"]
    problem(client.post("/predict", json={"series_id": "default"}), 404, "unknown-series")
    # Without a series_id column the window is the default series, by name too.
    window.publish(500)
    assert client.post("/predict", json={}).get_json()["series_id"] == DEFAULT_SERIES_ID
    named = client.post("/predict", json={"series_id": DEFAULT_SERIES_ID})
    assert named.status_code == 200
    listing = client.get("/series").get_json()
    assert listing["total"] == 1 and listing["items"][0]["series_id"] == DEFAULT_SERIES_ID


def test_a_series_too_short_for_the_model_is_a_503_naming_it_and_the_pod_stays_ready(window):
    window.publish_series({**parts(), "new": sample_table(20)})
    client = make_app(window).test_client()
    body = problem(client.post("/predict", json={"series_id": "new"}), 503, "window-unusable")
    assert "'new' has 20 rows" in body["detail"]
    assert client.get("/readyz").status_code == 200  # the other series are served
    assert client.post("/predict", json={"series_id": "z"}).status_code == 200


def test_cache_and_metrics_count_the_series(window):
    window.publish_series(parts())
    client = make_app(window).test_client()
    cache = client.get("/cache").get_json()
    assert cache["series"] == len(PARTS)
    # Inline: recomputed by the worker; segmented: the daemon's record, not recomputed.
    segmented = window.layout == "segmented"
    assert cache["checksum_matches"] is (None if segmented else True)
    snapshot = Reader(window.directory).current()
    assert snapshot is not None and cache["checksum"] == snapshot.metadata["window_checksum"]
    assert cache["checksum"] == snapshot.data_checksum()  # what the files hold
    times = [t for table in parts().values() for t in table["time"].to_pylist()]
    assert cache["time_min"] == min(times).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cache["time_max"] == max(times).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = client.get("/metrics").get_data(as_text=True)
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["webapp_window_series"] == len(PARTS)


def _origins(monkeypatch) -> list[tuple[str, int]]:
    calls: list[tuple[str, int]] = []
    real = webapp.snapshot_view._series_origin

    def counting(rows, model):
        calls.append((rows.series_id, rows.version[1]))
        return real(rows, model)

    monkeypatch.setattr(webapp.snapshot_view, "_series_origin", counting)
    return calls


def test_a_series_is_forecast_on_its_first_request_only(window, monkeypatch):
    calls = _origins(monkeypatch)
    gen = window.publish_series(parts())
    client = make_app(window).test_client()
    for _ in range(3):
        for sid in ("z", "meter:1"):
            assert client.post("/predict", json={"series_id": sid}).status_code == 200
    assert calls == [("z", gen), ("meter:1", gen)]  # never the series nobody asked for


def test_the_memo_keeps_at_most_forecast_memo_series(window, monkeypatch):
    calls = _origins(monkeypatch)
    window.publish_series(parts())
    client = make_app(window, FORECAST_MEMO_SERIES="2").test_client()
    order = ["z", "meter:1", "z", "météo/2", "meter:1", "z"]
    for sid in order:
        assert client.post("/predict", json={"series_id": sid}).status_code == 200
    # z, meter:1 computed; z a hit; météo/2 evicts meter:1 (least recent), which is then
    # computed again and evicts z, computed again in turn.
    assert [sid for sid, _ in calls] == ["z", "meter:1", "météo/2", "meter:1", "z"]


def test_a_series_whose_segment_is_carried_over_keeps_its_forecast(artifact, monkeypatch):
    """Segmented: a generation that rewrites one series' segment recomputes that series'
    forecast only; the others are answered from the memo, unchanged."""
    win, parent = new_shm_window(artifact, "segmented")
    try:
        calls = _origins(monkeypatch)
        segments = 8
        ids: dict[int, str] = {}
        for n in range(100):
            ids.setdefault(segment_of(f"meter-{n}", segments), f"meter-{n}")
        chosen = [ids[s] for s in sorted(ids)[:3]]
        tables = {sid: sample_table(400 + 10 * i, end=1000 + i) for i, sid in enumerate(chosen)}
        first = win.publish_series(tables, segments=segments)
        client = make_app(win).test_client()

        def answers() -> dict[str, list]:
            out = {}
            for sid in chosen:
                resp = client.post("/predict", json={"series_id": sid, "inference_length": 8})
                assert resp.status_code == 200, resp.get_data(as_text=True)
                out[sid] = resp.get_json()["predictions"]
            return out

        before = answers()
        moved = chosen[1]
        second = win.publish_series(
            {**tables, moved: sample_table(400, end=3000)}, segments=segments, changed={moved}
        )
        after = answers()
        assert calls == [*((sid, first) for sid in chosen), (moved, second)]
        assert {sid: after[sid] == before[sid] for sid in chosen} == {
            sid: sid != moved for sid in chosen
        }
    finally:
        win.close()
        remove_tree(parent)


# -- GET /series ------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=LAYOUTS)
def shared_window(artifact: bytes, request: pytest.FixtureRequest) -> Iterator[ShmWindow]:
    """As ``window``, one per layout for the whole module."""
    with shm_window(artifact, request.param) as win:
        yield win


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(
    ids=st.dictionaries(series_ids, st.integers(1, 3), min_size=1, max_size=60),
    limit=st.integers(1, 25) | st.none(),
)
def test_walking_the_pages_of_series_lists_every_id_once_in_order(shared_window, ids, limit):
    table = sample_table(3)
    shared_window.publish_series({sid: table.slice(0, rows) for sid, rows in ids.items()})
    client = make_app(shared_window).test_client()
    seen: list[dict] = []
    after: str | None = None
    while True:
        query = {} if limit is None else {"limit": str(limit)}
        if after is not None:
            query["after"] = after
        qs = "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        resp = client.get(f"/series?{qs}")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        page = resp.get_json()
        assert page["total"] == len(ids) and len(page["items"]) <= (limit or 100)
        seen += page["items"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
        assert after == page["items"][-1]["series_id"]
    assert [item["series_id"] for item in seen] == sorted(ids)
    times = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in table["time"].to_pylist()]
    for item in seen:
        rows = ids[item["series_id"]]
        assert (item["rows"], item["time_min"], item["time_max"]) == (
            rows,
            times[0],
            times[rows - 1],
        )


BAD_QUERIES = [
    ("limit=0", "limit", "out_of_range"),
    ("limit=1001", "limit", "out_of_range"),
    ("limit=-1", "limit", "not_an_integer"),
    ("limit=%2B5", "limit", "not_an_integer"),
    ("limit=1e2", "limit", "not_an_integer"),
    ("limit=", "limit", "not_an_integer"),
    ("limit=%D9%A3", "limit", "not_an_integer"),  # an Arabic-Indic three: int() would take it
    ("after=", "after", "invalid_series_id"),
    ("after=%FF", "after", "invalid_series_id"),
    ("after=" + "x" * 129, "after", "invalid_series_id"),
    ("limit=2&limit=3", "limit", "repeated_parameter"),
    ("limt=5", "limt", "unknown_field"),
]


@pytest.mark.parametrize(("query", "field", "code"), BAD_QUERIES)
def test_a_bad_query_is_a_422_naming_the_parameter(window, query, field, code):
    window.publish_series(parts())
    body = problem(make_app(window).test_client().get(f"/series?{query}"), 422, "validation-error")
    assert (body["errors"][0]["field"], body["errors"][0]["code"]) == (field, code)
    assert body["detail"].startswith(f"{field}: ")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=st.binary(max_size=60) | st.text(max_size=40).map(lambda t: t.encode()))
def test_no_query_string_makes_series_answer_5xx(shared_window, query):
    if shared_window.publisher.generation == 0:
        shared_window.publish_series(parts())
    client = make_app(shared_window).test_client()
    # WSGI carries the query string as it arrived, each byte one latin-1 character.
    resp = client.get("/series", environ_overrides={"QUERY_STRING": query.decode("latin-1")})
    assert resp.status_code in {200, 422}, resp.get_data(as_text=True)
    if resp.status_code == 422:
        assert resp.mimetype == PROBLEM and resp.get_json(force=True)["errors"][0]["field"]


def test_series_before_any_publication_is_a_503(window):
    problem(make_app(window).test_client().get("/series"), 503, "no-data")


# -- a real Gunicorn ----------------------------------------------------------------------------


@pytest.mark.server
def test_gunicorn_serves_the_series_and_each_ones_forecast(artifact):
    win, parent = new_shm_window(artifact)
    expected = {}
    try:
        for sid, table in parts().items():  # each series alone first, through Flask's client
            win.publish_table(table)
            reply = make_app(win).test_client().post("/predict", json={"inference_length": 5})
            expected[sid] = reply.get_json()["predictions"]
        gen = win.publish_series(parts())
        win.write_status()
        server = GunicornServer({"SHM_DIR": str(win.directory)}, workers=2)
        try:
            server.wait_ready()
            first = server.request("GET", "/series?limit=2")
            assert first.status == 200 and first.headers["x-cache-generation"] == str(gen)
            page = first.json()
            assert page["total"] == 3 and page["next_after"] == "météo/2"
            rest = server.request("GET", "/series?after=" + quote(page["next_after"])).json()
            listed = [i["series_id"] for i in page["items"] + rest["items"]]
            assert listed == sorted(PARTS) and rest["next_after"] is None
            for _ in range(3):  # new connections: both workers answer
                for sid in PARTS:
                    reply = server.post_json("/predict", {"series_id": sid, "inference_length": 5})
                    assert reply.status == 200, reply.body[:300]
                    body = reply.json()
                    assert body["series_id"] == sid and body["predictions"] == expected[sid]
            missing = server.post_json("/predict", {"series_id": "nope"})
            assert missing.status == 404 and missing.headers["content-type"] == PROBLEM
            assert missing.json()["type"] == "/problems/unknown-series"
            required = server.post_json("/predict", {})
            assert required.status == 422
            assert required.json()["errors"][0]["field"] == "series_id"
            assert server.request("GET", "/series?limit=0").status == 422
        finally:
            server.stop()
    finally:
        win.close()
        remove_tree(parent)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.integers(1, 60),
    values=st.lists(st.floats(-1e12, 1e12), min_size=1, max_size=48),
)
def test_a_prefix_of_an_encoded_forecast_is_the_prefix_of_its_points(steps, values):
    step = 1800 * 1_000_000_000
    times = np.arange(len(values), dtype=np.int64) * step + 962_409_600 * 1_000_000_000
    forecast = Predictions.of(times, np.array(values), step)
    points = json.loads(bytes(forecast.json()))
    assert [p["value"] for p in points] == values
    prefix = forecast.first(steps)
    assert json.loads(bytes(prefix.json())) == points[:steps] and len(prefix) == min(
        steps, len(values)
    )
