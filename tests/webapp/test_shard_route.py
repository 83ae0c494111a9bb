"""Shard routing of POST /predict (webapp.shard_route) through Flask's test client on a real
shm directory: 307 to the owner, 421 after one hop, everything else served as before."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.errors import ConfigError
from contract.partitioner import partition_of
from contract.series import MAX_SERIES_ID_BYTES
from tests.webapp._support import ROOT, ShmWindow
from tests.webapp.conftest import make_app
from tests.webapp.test_webapp_app import problem
from webapp import Settings
from webapp.openapi import build_spec
from webapp.shard_route import series_id_in

COUNT = 12
B = "http://shard-b.example:8000/prefix"
SHARDED = {
    "SHARD_MAP": f"0-5=http://shard-a.example:8000,6-11={B}/",
    "KAFKA_PARTITION_COUNT": str(COUNT),
    "KAFKA_PARTITIONS": "0-5",
}
series_ids = st.text(min_size=1).filter(lambda t: len(t.encode()) <= MAX_SERIES_ID_BYTES)


def ids_in(partitions: range, n: int) -> list[str]:
    """The first ``n`` ids ``meter-<i>`` whose partition is in ``partitions``."""
    found = (f"meter-{i}" for i in range(10_000))
    return [sid for sid in found if partition_of(sid, COUNT) in partitions][:n]


@pytest.fixture
def client(window) -> Iterator:
    window.publish(1000)
    yield make_app(window, **SHARDED).test_client()


def test_another_shards_series_is_redirected_with_method_body_and_query(client) -> None:
    for sid in ids_in(range(6, 12), 5):
        resp = client.post("/predict?trace=a%20b&trace=2", json={"series_id": sid})
        assert resp.status_code == 307
        assert resp.headers["Location"] == f"{B}/predict?trace=a+b&trace=2&shard_hop=1"
        assert resp.headers["X-Shard-Partition"] == str(partition_of(sid, COUNT))
        assert resp.headers["X-Shard"] == "0-5"


def test_an_own_series_and_a_request_without_one_are_served_here(client) -> None:
    for sid in ids_in(range(6), 5):
        resp = client.post("/predict", json={"series_id": sid})
        assert resp.status_code not in (307, 421)
        assert "Location" not in resp.headers and resp.headers["X-Shard"] == "0-5"
    resp = client.post("/predict", json={"inference_length": 2})
    assert resp.status_code == 200 and len(resp.get_json()["predictions"]) == 2
    assert resp.headers["X-Shard"] == "0-5"
    assert client.get("/cache").headers["X-Shard"] == "0-5"


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sid=series_ids, hop=st.booleans())
def test_a_series_is_served_only_by_its_owner(client, sid: str, hop: bool) -> None:
    path = "/predict?shard_hop=1" if hop else "/predict"
    resp = client.post(path, json={"series_id": sid, "inference_length": 1})
    partition = partition_of(sid, COUNT)
    if partition < 6:
        assert resp.status_code not in (307, 421)
    elif hop:
        body = problem(resp, 421, "misdirected-request")
        assert f"partition {partition}" in body["detail"]
        assert resp.headers["X-Shard-Partition"] == str(partition)
    else:
        assert resp.status_code == 307
        assert resp.headers["Location"].startswith(f"{B}/predict?")


def test_a_shard_without_data_still_redirects(window) -> None:
    client = make_app(window, **SHARDED).test_client()  # nothing published
    (other,) = ids_in(range(6, 12), 1)
    assert client.post("/predict", json={"series_id": other}).status_code == 307
    problem(client.post("/predict", json={}), 503, "no-data")


def test_bodies_routing_cannot_read_are_answered_as_without_routing(client) -> None:
    (other,) = ids_in(range(6, 12), 1)
    problem(
        client.post("/predict", data=b'{"series_id": ', content_type="application/json"),
        400,
        "invalid-json",
    )
    resp = client.post("/predict", data=f'{{"series_id": "{other}"}}', content_type="text/plain")
    problem(resp, 415, "unsupported-media-type")
    for body in ({"series_id": 7}, {"series_id": ""}, {"series_id": "x" * 129}, [other]):
        resp = client.post("/predict", json=body)
        assert resp.status_code == 422, body  # the view's answer, not a redirect


def test_series_id_is_read_from_the_top_level_only() -> None:
    assert series_id_in(b'{"series_id": "a", "data": {"series_id": ["b"]}}') == "a"
    assert series_id_in(b'{"data": {"series_id": "b"}}') is None
    assert series_id_in(b'{"series_id": "\\u00e9t\\u00e9"}') == "été"
    assert series_id_in(b"[]") is None and series_id_in(b"\xff") is None


def test_an_unsharded_pod_routes_nothing(window) -> None:
    window.publish(1000)
    client = make_app(window, KAFKA_PARTITIONS="0-5").test_client()
    (other,) = ids_in(range(6, 12), 1)
    resp = client.post("/predict", json={"series_id": other})
    assert resp.status_code not in (307, 421) and "X-Shard" not in resp.headers


def test_the_openapi_document_has_the_redirect_and_the_421() -> None:
    responses = build_spec(Settings.from_env(SHARDED))["paths"]["/predict"]["post"]["responses"]
    assert "Location" in responses["307"]["headers"]
    assert responses["421"]["content"]["application/problem+json"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"KAFKA_PARTITION_COUNT": ""}, "KAFKA_PARTITION_COUNT: required when SHARD_MAP is set"),
        ({"KAFKA_PARTITIONS": ""}, "KAFKA_PARTITIONS: required when SHARD_MAP is set"),
        ({"KAFKA_PARTITION_COUNT": "14"}, "SHARD_MAP: gives partitions 12-13 to no shard"),
        ({"KAFKA_PARTITIONS": "0-6"}, "KAFKA_PARTITIONS: 0-6 is not the partition set of one"),
        ({"KAFKA_PARTITIONS": "0-12"}, "KAFKA_PARTITIONS: includes 12, but"),
        ({"SHARD_MAP": "0-11=shard-a"}, "SHARD_MAP: 'shard-a' is not an http"),
    ],
)
def test_settings_that_cannot_route_name_the_variable(change: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(SHARDED | change)
    assert str(caught.value).startswith(says), caught.value


@given(st.binary(max_size=300) | st.builds(lambda s: s.encode(), st.text(max_size=100)))
def test_any_body_gives_an_id_or_none(body: bytes) -> None:
    found = series_id_in(body)
    assert found is None or (found and len(found.encode()) <= MAX_SERIES_ID_BYTES)


def _wsgi_imports_kafka(window: ShmWindow, **env: str) -> bool:
    """Whether ``webapp.wsgi`` (what the Gunicorn master loads), built in a fresh interpreter
    with ``env``, has imported kafka-python."""
    code = "import sys, webapp.wsgi; print('kafka' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "SHM_DIR": str(window.directory), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {"True": True, "False": False}[done.stdout.split()[-1]]


def test_only_a_sharded_app_imports_kafka(window) -> None:
    """kafka-python (its partitioner) costs the unsharded master nothing."""
    assert not _wsgi_imports_kafka(window)
    assert _wsgi_imports_kafka(window, **SHARDED)
