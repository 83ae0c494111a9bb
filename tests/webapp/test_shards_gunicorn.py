"""Two shards on loopback, each a real Gunicorn on its own shm window (SHARD_MAP routing).

Shard A owns partitions 0-5 and shard B 6-11 of a 12-partition topic; each window holds the
series Kafka's default partitioner puts in its partitions (a ``series_id`` column, 500 rows
each, published as a daemon would). A prediction for any series, sent to either shard, is
answered by the series' owner: directly, or after one 307 that a client follows with the same
method and body.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
import requests

from contract.partitioner import partition_of
from contract.series import SERIES_ID_COLUMN
from scripts.sample_window import sample_table, window_metadata
from tests.webapp._support import (
    GunicornServer,
    Reply,
    ShmWindow,
    loopback_socket,
    new_shm_window,
    remove_tree,
)
from webapp.shard_route import PARTITION_HEADER, SHARD_HEADER

pytestmark = pytest.mark.server

COUNT = 12
PARTITIONS = {"a": range(6), "b": range(6, 12)}
SERIES_PER_SHARD = 4
ROWS_PER_SERIES = 500


@dataclass
class Shard:
    name: str  # its partitions, as X-Shard names them
    server: GunicornServer
    window: ShmWindow
    series: list[str]
    checksum: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


def ids_in(partitions: range, n: int) -> list[str]:
    found = (f"store-{i}/sku-{i * 7 % 13}" for i in range(10_000))
    return [sid for sid in found if partition_of(sid, COUNT) in partitions][:n]


def publish_series(window: ShmWindow, series: list[str], end: int) -> str:
    """One block of sample rows per series, ids in a ``series_id`` column; its checksum."""
    table = sample_table(ROWS_PER_SERIES * len(series), end=end)
    ids = [sid for sid in series for _ in range(ROWS_PER_SERIES)]
    table = table.append_column(SERIES_ID_COLUMN, pa.array(ids, pa.string()))
    meta = window_metadata(table, window.model_meta)
    window.publisher.publish(table, metadata=meta)
    window.write_status()
    return meta["window_checksum"]


@pytest.fixture(scope="module")
def shards(artifact: bytes) -> Iterator[dict[str, Shard]]:
    sockets = {key: loopback_socket() for key in PARTITIONS}
    ports = {key: sock.getsockname()[1] for key, sock in sockets.items()}
    shard_map = ",".join(
        f"{r.start}-{r.stop - 1}=http://127.0.0.1:{ports[key]}" for key, r in PARTITIONS.items()
    )
    made: dict[str, Shard] = {}
    parents = []
    try:
        for n, (key, partitions) in enumerate(PARTITIONS.items()):
            window, parent = new_shm_window(artifact)
            parents.append(parent)
            series = ids_in(partitions, SERIES_PER_SHARD)
            checksum = publish_series(window, series, end=2000 * (n + 1))
            name = f"{partitions.start}-{partitions.stop - 1}"
            env = {
                "SHM_DIR": str(window.directory),
                "MAX_DATA_AGE_MS": "600000",
                "SHARD_MAP": shard_map,
                "KAFKA_PARTITION_COUNT": str(COUNT),
                "KAFKA_PARTITIONS": name,
            }
            server = GunicornServer(env, workers=2, sock=sockets[key])
            made[key] = Shard(name, server, window, series, checksum)
        for shard in made.values():
            shard.server.wait_ready()
        yield made
    finally:
        for shard in made.values():
            shard.server.stop()
            shard.window.close()
        for parent in parents:
            remove_tree(parent)
    for shard in made.values():
        assert shard.server.proc.returncode == 0, shard.server.final_log[-2000:]


def owner(shards: dict[str, Shard], series_id: str) -> Shard:
    partition = partition_of(series_id, COUNT)
    return next(s for key, s in shards.items() if partition in PARTITIONS[key])


def comparable(status: int, body: Any) -> tuple[int, Any]:
    """An answer without what differs between two requests to one shard (the data age)."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "data_age_ms"}
    return status, body


def direct(shard: Shard, payload: dict[str, Any]) -> Reply:
    return shard.server.post_json("/predict", payload)


@pytest.fixture
def client() -> Iterator[requests.Session]:
    session = requests.Session()
    session.trust_env = False  # loopback only: no proxy from the environment
    try:
        yield session
    finally:
        session.close()


def test_each_series_is_answered_by_its_shard_from_either_entry(
    shards: dict[str, Shard], client: requests.Session
) -> None:
    every = [sid for shard in shards.values() for sid in shard.series]
    for sid in every:
        home = owner(shards, sid)
        payload = {"series_id": sid, "inference_length": 2}
        expected = direct(home, payload)
        assert expected.status not in (307, 421)
        assert expected.headers[SHARD_HEADER.lower()] == home.name
        for entry in shards.values():
            first = direct(entry, payload)
            if entry is home:
                assert comparable(first.status, first.json()) == comparable(
                    expected.status, expected.json()
                )
            else:
                assert first.status == 307, first.body
                assert first.headers["location"] == f"{home.url}/predict?shard_hop=1"
                assert first.headers[PARTITION_HEADER.lower()] == str(partition_of(sid, COUNT))
                assert first.headers[SHARD_HEADER.lower()] == entry.name
            # A client that follows redirects (method and body kept on 307) ends at the owner.
            followed = client.post(f"{entry.url}/predict", json=payload, timeout=10)
            assert followed.headers[SHARD_HEADER] == home.name
            assert [r.status_code for r in followed.history] == ([] if entry is home else [307])
            assert comparable(followed.status_code, followed.json()) == comparable(
                expected.status, expected.json()
            )


def test_a_request_without_a_series_is_served_by_the_shard_it_reaches(
    shards: dict[str, Shard],
) -> None:
    for shard in shards.values():
        reply = direct(shard, {})
        assert reply.headers[SHARD_HEADER.lower()] == shard.name and reply.status != 307
        if reply.status == 200:  # a window read as one series: this shard's whole table
            assert reply.json()["window"]["checksum"] == shard.checksum
        else:  # a window of many series needs the id (422 naming the field)
            assert reply.status == 422 and "series_id" in reply.body.decode()


def test_a_redirected_request_at_the_wrong_shard_is_refused_not_served(
    shards: dict[str, Shard],
) -> None:
    a, b = shards["a"], shards["b"]
    sid = b.series[0]
    reply = a.server.post_json("/predict?shard_hop=1", {"series_id": sid})
    assert reply.status == 421
    assert reply.json()["type"] == "/problems/misdirected-request"
    assert reply.headers[SHARD_HEADER.lower()] == a.name
    # The same request at its owner is served there.
    assert b.server.post_json("/predict?shard_hop=1", {"series_id": sid}).status not in (307, 421)
