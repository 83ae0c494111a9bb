"""The image's two commands, run on the host exactly as declared.

The web command is the Dockerfile's CMD, the daemon command is the pod spec's ``args`` for the
sidecar. The image's files are staged by carrying out the runtime stage's WORKDIR and COPY
instructions (the model comes from the build stage's own training RUN line); both commands run
in the image's WORKDIR with the image's ENV, then the pod's ConfigMaps (and Secrets), image
paths mapped to the staged root (``tests/deploy/_image.py``). A file the image lacks, or a
variable pointing at one, fails here as it would in the container. Only two things differ from
the pod, on purpose: the web server listens on a free loopback port instead of 0.0.0.0:8000,
and the memory-backed mount is a fresh directory on this host's /dev/shm.

Without Docker here, this proves what ``docker build`` cannot: the declared entry points,
variables and files start a service that answers /readyz and /predict, against the replay
source (the base manifests) and against a real Kafka and S3 (the example overlay).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests._stack import StackHandle
from tests.deploy._dockerfile import parse
from tests.deploy._image import (
    BASE_IMAGE_PATH,
    Rootfs,
    Service,
    free_port,
    host_env,
    resolve,
    stage_runtime,
    train_like_the_build,
    wait_until,
)
from tests.deploy._manifests import (
    BASE,
    OVERLAYS,
    ROOT,
    container_env,
    find,
    pod_containers,
    render,
)

STAGES = parse(ROOT / "Dockerfile")
BUILD, FINAL = STAGES[0], STAGES[-1]
READY_TIMEOUT_S = 90.0

# slow: each test starts Gunicorn and the daemon (integration is added for the stack's one).
pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


@dataclass(frozen=True)
class Layout:
    """One test's host stand-ins: the staged image, the shared memory mount, a home."""

    rootfs: Rootfs
    home: Path


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime image's files, staged once per module: the build stage's training RUN line
    writes the model, then the runtime stage's COPY instructions fill the root."""
    top = tmp_path_factory.mktemp("image")
    build = Rootfs(root=top / "build", shm_mount=top / "build-shm")
    train_like_the_build(BUILD, build, home=top)
    root = top / "runtime"
    stage_runtime(FINAL, STAGES, build, root)
    return root


@pytest.fixture
def layout(tmp_path: Path, image_root: Path) -> Iterator[Layout]:
    mount = Path(tempfile.mkdtemp(prefix="deploy-test-", dir="/dev/shm"))
    home = tmp_path / "home"
    home.mkdir()
    try:
        yield Layout(Rootfs(root=image_root, shm_mount=mount), home)
    finally:
        shutil.rmtree(mount, ignore_errors=True)


def _http(
    method: str, url: str, body: dict[str, Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None, {}


def _pod_env(
    docs: list[dict[str, Any]], container: str, secrets: dict[str, Any] | None
) -> dict[str, str]:
    (deployment,) = find(docs, "Deployment")
    image_env = FINAL.env({"PATH": BASE_IMAGE_PATH})
    return {**image_env, **container_env(docs, pod_containers(deployment)[container], secrets)}


def _commands(docs: list[dict[str, Any]]) -> dict[str, list[str]]:
    (deployment,) = find(docs, "Deployment")
    containers = pod_containers(deployment)
    assert "args" not in containers["web"] and "command" not in containers["web"]
    cmd, entrypoint = FINAL.last("CMD"), FINAL.last("ENTRYPOINT")
    assert cmd is not None and entrypoint is not None
    # tini (the ENTRYPOINT) only forwards signals; the test sends them to the command itself.
    assert entrypoint.exec_form() == ["tini", "--"]
    return {"web": cmd.exec_form(), "cache-daemon": containers["cache-daemon"]["args"]}


def _start(
    service: Service,
    docs: list[dict[str, Any]],
    layout: Layout,
    secrets: dict[str, Any] | None = None,
    **overrides: str,
) -> tuple[str, dict[str, dict[str, str]]]:
    """Start the daemon, then the web server; ``overrides`` replace values the pod declares
    (a name the pod does not declare is an error: the test must not add configuration)."""
    commands = _commands(docs)
    envs = {}
    port = free_port()
    unused = set(overrides)
    for name in ("cache-daemon", "web"):
        env = host_env(_pod_env(docs, name, secrets), layout.rootfs, layout.home)
        declared = {k: v for k, v in overrides.items() if k in env}
        unused -= set(declared)
        env.update(declared)
        if name == "web":
            env.update(WEB_HOST="127.0.0.1", PORT=str(port))
        envs[name] = env
        cwd = Path(layout.rootfs.map(FINAL.workdir()))
        service.start(name, resolve(commands[name], env), env, cwd)
    assert not unused, f"the pod declares no {sorted(unused)}"
    return f"http://127.0.0.1:{port}", envs


def _probe(argv: list[str], env: dict[str, str], layout: Layout) -> int:
    mapped = [layout.rootfs.map(a) if a.startswith("/") else a for a in argv]
    result = subprocess.run(
        resolve(mapped, env), env=env, capture_output=True, timeout=10, check=False
    )
    return result.returncode


def _check_serving(base: str, service: Service) -> dict[str, Any]:
    def ready() -> bool:
        return _http("GET", base + "/readyz")[0] == 200

    wait_until(ready, READY_TIMEOUT_S, service, "/readyz 200")
    status, body, headers = _http("POST", base + "/predict", {})
    assert status == 200, (status, body, service.logs())
    assert body["predictions"] and body["generation"] >= 1
    assert int(headers["X-Cache-Generation"]) == body["generation"]
    status, horizon, _ = _http("POST", base + "/predict", {"inference_length": 4})
    assert status == 200 and len(horizon["predictions"]) == 4
    status, cache, _ = _http("GET", base + "/cache")
    assert status == 200 and cache["checksum_matches"] is True, cache
    return cache  # type: ignore[no-any-return]


def _check_probes_and_stop(
    service: Service,
    docs: list[dict[str, Any]],
    envs: dict[str, dict[str, str]],
    layout: Layout,
) -> None:
    (deployment,) = find(docs, "Deployment")
    containers = pod_containers(deployment)
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = containers["cache-daemon"][name]["exec"]["command"]
        assert _probe(command, envs["cache-daemon"], layout) == 0, name
    healthcheck = FINAL.last("HEALTHCHECK")
    assert healthcheck is not None
    # On the host PID 1 is not the daemon, so the image's HEALTHCHECK checks the web side.
    assert _probe(healthcheck.exec_form(), envs["web"], layout) == 0
    assert service.stop("web") == 0, service.logs()
    assert service.stop("cache-daemon") == 0, service.logs()


def test_base_pod_commands_serve_the_replay_window(layout: Layout, tmp_path: Path) -> None:
    docs = render(BASE)
    root = layout.rootfs.root
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert {
        "app/gunicorn.conf.py",
        "app/deploy/healthcheck.py",
        "app/data/electricity_demand_halfhourly.parquet",
        "app/model/model.skops",
        "app/model/model.skops.sha256",
    } <= files
    entry_points = {"app/gunicorn.conf.py", "app/deploy/healthcheck.py"}
    assert not [f for f in files if f.endswith(".py") and f not in entry_points], (
        "package sources reach the image only as the installed wheel"
    )
    with Service(tmp_path).running() as service:
        base, envs = _start(service, docs, layout)
        cache = _check_serving(base, service)
        assert cache["source"] == "replay"
        assert Path(envs["web"]["SHM_DIR"]).parent == layout.rootfs.shm_mount
        _check_probes_and_stop(service, docs, envs, layout)


def test_example_overlay_commands_serve_from_kafka_and_s3(
    stack: StackHandle, layout: Layout, tmp_path: Path
) -> None:
    """The example overlay's configuration (Kafka source, model and snapshot from S3, the
    image's model path cleared), pointed at the real stack: three partitions, one daemon,
    every partition read."""
    (overlay,) = OVERLAYS
    docs = render(overlay)
    # The image's own demo artifact, uploaded as the production model would be.
    artifact = Path(layout.rootfs.map(FINAL.env({"PATH": BASE_IMAGE_PATH})["MODEL_PATH"]))
    bucket = stack.new_bucket()
    client = stack.minio()
    for path in (artifact, artifact.with_name(artifact.name + ".sha256")):
        client.fput_object(
            bucket_name=bucket, object_name=f"models/{path.name}", file_path=str(path)
        )

    topic = stack.new_topic(3)
    frame = pd.read_parquet(ROOT / "data" / "electricity_demand_halfhourly.parquet").head(600)
    events = [
        {"time": t.isoformat() + "Z", "demand_mw": float(v)}
        for t, v in zip(frame["time"], frame["demand_mw"], strict=True)
    ]
    for partition in range(3):
        stack.produce_json(topic, events[partition::3], partition=partition)

    stack_env = stack.env()
    secrets = {
        "shm-forecast-s3": {
            "access-key": stack_env["S3_ACCESS_KEY"],
            "secret-key": stack_env["S3_SECRET_KEY"],
        }
    }
    overrides = {
        "KAFKA_BOOTSTRAP_SERVERS": stack_env["KAFKA_BOOTSTRAP_SERVERS"],
        "KAFKA_TOPIC": topic,
        "S3_ENDPOINT": stack_env["S3_ENDPOINT"],
        "S3_SECURE": stack_env["S3_SECURE"],
        "S3_REGION": stack_env["S3_REGION"],
        "MODEL_BUCKET": bucket,
        "MODEL_KEY": f"models/{artifact.name}",
        "SNAPSHOT_BUCKET": bucket,  # the key is absent: the daemon starts from Kafka alone
    }
    with Service(tmp_path).running() as service:
        base, envs = _start(service, docs, layout, secrets, **overrides)
        assert envs["cache-daemon"]["MODEL_PATH"] == "", "the overlay clears the demo model"
        cache = _check_serving(base, service)
        assert cache["source"] == "kafka" and cache["topic"] == topic
        assert cache["offsets"] == {"0": 200, "1": 200, "2": 200}, cache
        assert cache["rows"] == 600
        _check_probes_and_stop(service, docs, envs, layout)
