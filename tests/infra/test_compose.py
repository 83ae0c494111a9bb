"""deploy/compose.yaml cannot be run here (no Docker engine): parse it and check the wiring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
SHM_PATH = "/dev/shm/shm-forecast"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def test_services_and_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "minio", "seed", "daemon", "web"} <= services.keys()
    assert services["daemon"]["command"] == ["python", "-m", "cache_daemon"]
    assert services["web"]["command"] == ["gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"]
    for name in ("seed", "daemon", "web"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (
            ROOT / "Dockerfile"
        )
        assert services[name]["image"] == services["daemon"]["image"]
    assert services["seed"]["command"][:3] == ["python", "-m", "scripts.seed"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")


def test_daemon_and_web_share_one_memory_backed_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    mounts = {name: services[name]["volumes"] for name in ("daemon", "web")}
    # Mounted at /dev/shm, as the pod mounts its emptyDir: Gunicorn's heartbeats and the
    # Prometheus files live there too, and SHM_DIR is a subdirectory the daemon creates 0750.
    assert mounts["daemon"] == mounts["web"] == ["shm:/dev/shm"]
    assert env(services["daemon"])["SHM_DIR"] == env(services["web"])["SHM_DIR"] == SHM_PATH
    assert env(services["daemon"])["MAX_DATA_AGE_MS"] == env(services["web"])["MAX_DATA_AGE_MS"]
    volume = compose["volumes"]["shm"]
    assert volume["driver_opts"]["type"] == "tmpfs"
    options = dict(item.split("=", 1) for item in volume["driver_opts"]["o"].split(","))
    assert options["size"].endswith("m")
    assert int(options["size"][:-1]) >= 128
    # World-writable like an emptyDir, so sticky: nobody removes another user's files; group
    # of the image's user, like the pod's fsGroup.
    assert int(options["mode"], 8) & 0o1000
    user = services["daemon"]["user"]
    assert user == services["web"]["user"] and user.endswith(f":{options['gid']}")
    # Nothing else shares the window volume.
    others = [n for n, s in services.items() if n not in {"daemon", "web"}]
    assert not any("shm:" in str(services[n].get("volumes")) for n in others)


def test_ports_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    published = {name: service.get("ports", []) for name, service in compose["services"].items()}
    assert published["kafka"] == ["127.0.0.1:9092:9092"]
    assert "127.0.0.1:9000:9000" in published["minio"]
    assert published["web"] == ["127.0.0.1:8000:8000"]
    for ports in published.values():
        assert all(str(port).startswith("127.0.0.1:") for port in ports)
    assert env(compose["services"]["web"])["PORT"] == "8000"


def test_clients_point_at_the_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    kafka = env(services["kafka"])
    advertised = dict(
        item.split("://", 1) for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    minio = env(services["minio"])
    for name in ("seed", "daemon"):
        client = env(services[name])
        assert (
            client["KAFKA_BOOTSTRAP_SERVERS"]
            == advertised[kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]]
        )
        assert client["S3_ENDPOINT"] == "minio:9000"
        assert client["S3_ACCESS_KEY"] == minio["MINIO_ROOT_USER"]
        assert client["S3_SECRET_KEY"] == minio["MINIO_ROOT_PASSWORD"]
        assert client["SNAPSHOT_BUCKET"] and client["SNAPSHOT_KEY"]
    assert env(services["seed"])["KAFKA_TOPIC"] == env(services["daemon"])["KAFKA_TOPIC"]


def test_start_order_waits_for_health_and_the_seed(compose: dict[str, Any]) -> None:
    services = compose["services"]
    daemon_deps = services["daemon"]["depends_on"]
    assert daemon_deps["kafka"]["condition"] == "service_healthy"
    assert daemon_deps["minio"]["condition"] == "service_healthy"
    assert daemon_deps["seed"]["condition"] == "service_completed_successfully"
    assert services["web"]["depends_on"]["daemon"]["condition"] == "service_healthy"
    assert services["seed"]["restart"] == "no"
    for name in ("kafka", "minio", "daemon", "web"):
        assert services[name]["healthcheck"]["test"]
