"""deploy/k8s/sharded: two shards of one topic and the Service in front of both, schema-valid
and consistent: the shards' partitions cover the topic once, each pod's two programs accept
its configuration, and SHARD_MAP sends each partition to the Service of the shard that reads
it (and only that shard's pods)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from cache_daemon.config import DaemonConfig
from tests.deploy._manifests import ROOT, container_env, find, pod_containers, render
from tests.deploy.test_manifests import IMAGE_ENV, SECRETS
from webapp.config import Settings

SHARDED = ROOT / "deploy" / "k8s" / "sharded"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    return render(SHARDED)


def _labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _configs(docs: list[Doc], deployment: Doc) -> tuple[DaemonConfig, Settings]:
    containers = pod_containers(deployment)
    daemon = {**IMAGE_ENV, **container_env(docs, containers["cache-daemon"], SECRETS)}
    web = {**IMAGE_ENV, **container_env(docs, containers["web"])}
    return DaemonConfig.from_env(daemon), Settings.from_env(web)


def test_every_document_is_valid(docs: list[Doc]) -> None:
    version = kubernetes_validate.latest_version()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    deployments = find(docs, "Deployment")
    assert sorted(d["metadata"]["name"] for d in deployments) == [
        "shm-forecast-a",
        "shm-forecast-b",
    ]
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"):
        assert len(find(docs, kind)) == 2, kind


def test_shards_cover_the_topic_once_and_the_map_points_at_their_services(
    docs: list[Doc],
) -> None:
    deployments = find(docs, "Deployment")
    services = {s["metadata"]["name"]: s for s in find(docs, "Service")}
    owned: list[frozenset[int]] = []
    count = None
    for deployment in deployments:
        daemon, web = _configs(docs, deployment)
        assert daemon.source == "kafka" and daemon.kafka_partitions == web.kafka_partitions
        assert daemon.kafka_partition_count == web.kafka_partition_count
        assert web.kafka_partitions is not None and web.shard_map is not None
        count = web.kafka_partition_count
        owned.append(web.kafka_partitions)
        # This shard's SHARD_MAP entry names a Service that selects its pods and no other's.
        url = web.shard_map.url_of(web.kafka_partitions)
        assert url is not None
        host = url.removeprefix("http://").split("/")[0]
        name, namespace, tail = host.split(".")
        assert (namespace, tail) == (deployment["metadata"]["namespace"], "svc")
        selector = services[name]["spec"]["selector"]
        for other in deployments:
            assert _selects(selector, _labels(other)) == (other is deployment), name
    assert count is not None
    assert sum(len(p) for p in owned) == count
    assert frozenset().union(*owned) == frozenset(range(count))
    maps = {str(_configs(docs, d)[1].shard_map) for d in deployments}
    assert len(maps) == 1, f"the shards disagree on SHARD_MAP: {maps}"


def test_each_shard_scales_and_drains_alone_and_the_front_service_reaches_all(
    docs: list[Doc],
) -> None:
    deployments = find(docs, "Deployment")
    front = next(s for s in find(docs, "Service") if s["metadata"]["name"] == "shm-forecast")
    assert all(_selects(front["spec"]["selector"], _labels(d)) for d in deployments)
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        (hpa,) = [h for h in find(docs, "HorizontalPodAutoscaler") if h["metadata"]["name"] == name]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        for kind, path in (
            ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
            ("NetworkPolicy", ("spec", "podSelector", "matchLabels")),
        ):
            (doc,) = [d for d in find(docs, kind) if d["metadata"]["name"] == name]
            selector = doc
            for key in path:
                selector = selector[key]
            for other in deployments:
                assert _selects(selector, _labels(other)) == (other is deployment), (kind, name)
