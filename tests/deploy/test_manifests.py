"""Kubernetes manifests: schema-valid for a current Kubernetes, and shaped as the design needs
(one memory-backed volume shared by the web container and the daemon sidecar, probes on the
right endpoints, non-root, read-only root filesystems, a configuration both programs accept)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from cache_daemon.config import DaemonConfig
from tests.deploy._dockerfile import parse
from tests.deploy._manifests import (
    BASE,
    OVERLAYS,
    ROOT,
    container_env,
    find,
    pod_containers,
    render,
)
from webapp.config import Settings

TREES = [BASE, *OVERLAYS]
FINAL = parse(ROOT / "Dockerfile")[-1]
IMAGE_ENV = FINAL.env({"PATH": "/usr/local/bin:/usr/bin:/bin"})
DAEMON_ARGS = ["python", "-m", "cache_daemon"]
HEALTHCHECK = "/app/deploy/healthcheck.py"
MIB = 1024 * 1024
_UNITS = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB, "K": 1000, "M": 1000**2, "G": 1000**3}
# Model artifacts are about 0.25 MB today; the sizing rule budgets 1 MiB each.
MODEL_BUDGET = MIB
SMALL_FILES_BUDGET = 32 * MIB
SECRETS = {"shm-forecast-s3": {"access-key": "AKIAEXAMPLE", "secret-key": "example"}}

Doc = dict[str, Any]


def _id(path: Path) -> str:
    return path.relative_to(ROOT / "deploy" / "k8s").as_posix()


@pytest.fixture(scope="module", params=TREES, ids=_id)
def docs(request: pytest.FixtureRequest) -> list[Doc]:
    return render(request.param)


@pytest.fixture(scope="module")
def deployment(docs: list[Doc]) -> Doc:
    (found,) = find(docs, "Deployment")
    return found


@pytest.fixture(scope="module")
def pod(deployment: Doc) -> Doc:
    spec: Doc = deployment["spec"]["template"]["spec"]
    return spec


def _bytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]i?)?", quantity)
    assert match, f"unsupported quantity {quantity!r}"
    return int(match.group(1)) * _UNITS.get(match.group(2) or "", 1)


def _image_env_for_the_host(env: dict[str, str]) -> dict[str, str]:
    return {**IMAGE_ENV, **env}


def test_there_is_an_example_overlay() -> None:
    assert [p.name for p in OVERLAYS] == ["example"]


def test_every_document_is_valid_for_the_current_kubernetes(docs: list[Doc]) -> None:
    version = kubernetes_validate.latest_version()
    assert tuple(int(x) for x in version.split(".")[:2]) >= (1, 33)  # native sidecars are GA
    kinds = set()
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
        kinds.add(doc["kind"])
    expected = {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"}
    assert expected | {"HorizontalPodAutoscaler", "NetworkPolicy", "ServiceAccount"} <= kinds


def test_validation_rejects_a_broken_manifest(deployment: Doc) -> None:
    """kubernetes-validate in strict mode really checks the fields used here."""
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_web_and_daemon_share_one_memory_backed_volume_at_one_path(pod: Doc) -> None:
    containers = pod_containers({"spec": {"template": {"spec": pod}}})
    assert set(containers) == {"web", "cache-daemon"}
    sidecar = next(c for c in pod["initContainers"] if c["name"] == "cache-daemon")
    assert sidecar["restartPolicy"] == "Always", "the daemon must be a native sidecar"
    volumes = {v["name"]: v for v in pod["volumes"]}
    memory = [
        name for name, v in volumes.items() if v.get("emptyDir", {}).get("medium") == "Memory"
    ]
    assert len(memory) == 1
    (shm,) = memory
    assert volumes[shm]["emptyDir"].get("sizeLimit")
    paths = {
        name: {m["mountPath"] for m in c["volumeMounts"] if m["name"] == shm}
        for name, c in containers.items()
    }
    assert paths["web"] == paths["cache-daemon"] == {"/dev/shm"}
    for c in containers.values():
        mount = next(m for m in c["volumeMounts"] if m["name"] == shm)
        assert not mount.get("readOnly"), "the daemon writes, the web workers write metrics"
        assert "subPath" not in mount


def test_both_containers_agree_on_the_window_directory_and_staleness(docs: list[Doc]) -> None:
    (deployment,) = find(docs, "Deployment")
    containers = pod_containers(deployment)
    envs = {n: _image_env_for_the_host(container_env(docs, c)) for n, c in containers.items()}
    assert envs["web"]["SHM_DIR"] == envs["cache-daemon"]["SHM_DIR"]
    assert Path(envs["web"]["SHM_DIR"]).parent == Path("/dev/shm"), (
        "SHM_DIR must be a subdirectory of the mount: the daemon creates it 0750, while the "
        "volume's root is world-writable and the shm package refuses that"
    )
    assert envs["web"]["MAX_DATA_AGE_MS"] == envs["cache-daemon"]["MAX_DATA_AGE_MS"]


def test_the_configuration_is_accepted_by_both_programs(docs: list[Doc]) -> None:
    (deployment,) = find(docs, "Deployment")
    containers = pod_containers(deployment)
    daemon_env = _image_env_for_the_host(container_env(docs, containers["cache-daemon"], SECRETS))
    config = DaemonConfig.from_env(daemon_env)
    web = Settings.from_env(_image_env_for_the_host(container_env(docs, containers["web"])))
    assert config.max_data_age_ms == web.max_data_age_ms
    assert str(config.shm_dir) == str(web.shm_dir)
    if config.source == "kafka":
        # Production shape: the model comes from S3, not from the image's demo artifact.
        assert config.model_bucket and config.model_key and config.model_path is None
        assert config.s3 is not None and config.s3.access_key == "AKIAEXAMPLE"


def test_probes_hit_the_right_endpoints(pod: Doc) -> None:
    web = next(c for c in pod["containers"] if c["name"] == "web")
    (port,) = web["ports"]
    assert port["name"] == "http" and str(port["containerPort"]) == IMAGE_ENV["PORT"]
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert "command" not in web and "args" not in web, "web runs the image's CMD"

    daemon = next(c for c in pod["initContainers"] if c["name"] == "cache-daemon")
    assert daemon["args"] == DAEMON_ARGS and "command" not in daemon, "keeps tini as PID 1"
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert daemon[kind]["exec"]["command"] == ["python", HEALTHCHECK, "daemon"]
    copies = [c.operands() for c in FINAL.all("COPY")]
    assert ["deploy/healthcheck.py", "deploy/healthcheck.py"] in copies
    assert FINAL.workdir() == "/app"


def test_non_root_read_only_and_no_capabilities(pod: Doc) -> None:
    uid, gid = (int(x) for x in FINAL.last("USER").args.split(":"))  # type: ignore[union-attr]
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    assert (security["runAsUser"], security["runAsGroup"], security["fsGroup"]) == (uid, gid, gid)
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod_containers({"spec": {"template": {"spec": pod}}}).values():
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/dev/shm", "/tmp"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{c['name']} {kind}"


def test_shared_volume_and_daemon_memory_fit_the_configured_window(docs: list[Doc]) -> None:
    """The documented sizing rule holds: sizeLimit >= 3 windows + 2 models + small files, and
    the daemon (charged for the pages it writes) has room for the volume and its own copy."""
    (deployment,) = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    daemon = pod_containers(deployment)["cache-daemon"]
    env = _image_env_for_the_host(container_env(docs, daemon, SECRETS))
    config = DaemonConfig.from_env(env)
    assert config.window_rows is not None, "size the volume from WINDOW_ROWS"
    window = config.window_rows * 8 * (1 + len(config.columns))
    (shm,) = (v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory")
    size_limit = _bytes(shm["emptyDir"]["sizeLimit"])
    assert size_limit >= 3 * window + 2 * MODEL_BUDGET + SMALL_FILES_BUDGET
    assert _bytes(daemon["resources"]["limits"]["memory"]) >= size_limit + 2 * window


def test_service_pdb_hpa_and_scrape_target_point_at_the_pods(docs: list[Doc]) -> None:
    (deployment,) = find(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    namespace = deployment["metadata"].get("namespace")
    assert namespace, "no resource in the default namespace"

    def selects(selector: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in selector.items())

    (service,) = find(docs, "Service")
    assert selects(service["spec"]["selector"])
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    (pdb,) = find(docs, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"])
    (hpa,) = find(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2, "one pod alone cannot roll or drain without a gap"
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    rolling = deployment["spec"]["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0
    (policy,) = find(docs, "NetworkPolicy")
    assert selects(policy["spec"]["podSelector"]["matchLabels"])
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == IMAGE_ENV["PORT"]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]
