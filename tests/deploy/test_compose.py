"""deploy/compose.yaml runs the pod of deploy/k8s: the same processes (the image's ENTRYPOINT
and CMD, the sidecar's args), user, read-only root, capabilities, shared memory-backed volume,
environment, probe commands and grace period. ``make image-test`` renders it again against the
built image's own ENTRYPOINT and CMD (tests/deploy/image_check.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy._compose import compose_env, load, process_argv, volume_options
from tests.deploy._dockerfile import parse
from tests.deploy._manifests import BASE, ROOT, find, pod_containers, render
from tests.deploy._pod import PodPlan, pod_plan, tmpfs_bytes

FINAL = parse(ROOT / "Dockerfile")[-1]
SERVICES = {"cache-daemon": "daemon", "web": "web"}
# The daemon's sources in Compose are its own Kafka and MinIO, not the pod's replay demo.
STACK_KEYS = ("KAFKA_BOOTSTRAP_SERVERS", "S3_", "SNAPSHOT_")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load()


@pytest.fixture(scope="module")
def pod() -> PodPlan:
    return pod_plan(render(BASE))


def _image_argv() -> tuple[list[str], list[str]]:
    entrypoint, cmd = FINAL.last("ENTRYPOINT"), FINAL.last("CMD")
    assert entrypoint is not None and cmd is not None
    return entrypoint.exec_form(), cmd.exec_form()


@pytest.mark.parametrize("container", SERVICES)
def test_each_service_runs_the_pod_containers_process(
    compose: dict[str, Any], pod: PodPlan, container: str
) -> None:
    entrypoint, cmd = _image_argv()
    service = compose["services"][SERVICES[container]]
    plan = pod.containers[container]
    assert process_argv(service, entrypoint, cmd) == [*entrypoint, *(plan.args or cmd)]
    assert service["user"] == f"{plan.uid}:{plan.gid}" == FINAL.last("USER").args  # type: ignore[union-attr]


@pytest.mark.parametrize("container", SERVICES)
def test_each_service_is_locked_down_like_the_pod(
    compose: dict[str, Any], pod: PodPlan, container: str
) -> None:
    service = compose["services"][SERVICES[container]]
    assert service.get("read_only") is pod.containers[container].read_only is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert any(t.split(":")[0] == "/tmp" for t in service["tmpfs"]), "a writable /tmp"
    assert service["stop_grace_period"] == f"{pod.grace_period_s:.0f}s"


def test_one_memory_backed_volume_at_dev_shm_sized_as_the_pod(
    compose: dict[str, Any], pod: PodPlan
) -> None:
    mounts = {
        name: [v for v in compose["services"][name]["volumes"] if v.endswith(":/dev/shm")]
        for name in SERVICES.values()
    }
    assert mounts["daemon"] == mounts["web"] and len(mounts["web"]) == 1, mounts
    (volume,) = {m.split(":")[0] for m in mounts["web"]}
    options = volume_options(compose, volume)
    assert options["type"] == options["device"] == "tmpfs"
    mount = dict(o.partition("=")[::2] for o in options["o"].split(","))
    assert tmpfs_bytes(mount["size"].replace("m", "Mi")) == pod.shm_size_bytes
    assert int(mount["gid"]) == pod.containers["web"].fs_group


@pytest.mark.parametrize("container", SERVICES)
def test_each_service_has_the_pods_environment(
    compose: dict[str, Any], pod: PodPlan, container: str
) -> None:
    env = compose_env(compose["services"][SERVICES[container]])
    expected = {
        k: v for k, v in pod.containers[container].env.items() if not k.startswith(STACK_KEYS)
    }
    differing = {k: (v, env.get(k)) for k, v in expected.items() if env.get(k, "") != v}
    assert not differing, f"pod value vs compose value: {differing}"


def test_health_checks_run_the_probe_commands(compose: dict[str, Any]) -> None:
    docs = render(BASE)
    (deployment,) = find(docs, "Deployment")
    daemon = pod_containers(deployment)["cache-daemon"]
    services = compose["services"]
    probe = daemon["livenessProbe"]["exec"]["command"]
    assert services["daemon"]["healthcheck"]["test"] == ["CMD", *probe]
    image_check = FINAL.last("HEALTHCHECK")
    assert image_check is not None
    assert services["web"]["healthcheck"]["test"] == ["CMD", *image_check.exec_form(), "web"]
