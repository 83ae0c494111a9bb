"""The pod of ``deploy/k8s`` as container runs: what each container gets, read from the
rendered manifests, and the ``podman run`` options that reproduce it on one machine.

What the kubelet would do and this reproduces: the uid/gid and supplementary fsGroup, the
read-only root filesystem with an emptyDir at /tmp, no capabilities, no privilege escalation,
the default seccomp profile, the memory and CPU limits, one memory-backed volume at /dev/shm
shared by both containers, the ConfigMaps' variables, the sidecar's ``args`` after the image's
ENTRYPOINT, and the probes' commands. What differs, on purpose: both containers use the
host's network (so traffic stays on loopback), and the web server listens on a free loopback
port instead of 0.0.0.0:8000 (``PORT`` and ``WEB_HOST`` overridden; the probes read ``PORT``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.deploy._manifests import container_env, find, pod_containers

__all__ = ["ContainerPlan", "PodPlan", "pod_plan", "run_options", "tmpfs_bytes"]

SHM = "/dev/shm"
_UNITS = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}

Doc = dict[str, Any]


def tmpfs_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes quantity such as ``256Mi``."""
    match = re.fullmatch(r"(\d+)([KMG]i?)?", quantity)
    if match is None:
        raise ValueError(f"unsupported quantity {quantity!r}")
    return int(match.group(1)) * _UNITS.get(match.group(2) or "", 1)


@dataclass(frozen=True)
class ContainerPlan:
    """One long-running container of the pod."""

    name: str
    args: list[str] | None  # None: the image's CMD
    env: dict[str, str]
    uid: int
    gid: int
    fs_group: int
    read_only: bool
    memory_limit: str
    cpu_limit: str
    exec_probes: dict[str, list[str]]  # probe kind -> command
    http_probes: dict[str, str]  # probe kind -> path
    probe_budget_s: dict[str, float]  # probe kind -> period x failureThreshold
    probe_timeout_s: dict[str, float]


@dataclass(frozen=True)
class PodPlan:
    """The pod: containers in start order (the native sidecar first), the shared volume's
    size, the termination grace period and the web container's preStop pause."""

    containers: dict[str, ContainerPlan]
    shm_size_bytes: int
    grace_period_s: float
    pre_stop_sleep_s: float


def _container(docs: list[Doc], pod: Doc, spec: Doc) -> ContainerPlan:
    security = {**pod.get("securityContext", {}), **spec.get("securityContext", {})}
    exec_probes, http_probes, budget, timeouts = {}, {}, {}, {}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = spec.get(kind)
        if probe is None:
            continue
        if "exec" in probe:
            exec_probes[kind] = list(probe["exec"]["command"])
        else:
            http_probes[kind] = probe["httpGet"]["path"]
        budget[kind] = float(probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3))
        timeouts[kind] = float(probe.get("timeoutSeconds", 1))
    mounts = {m["mountPath"] for m in spec.get("volumeMounts", [])}
    if SHM not in mounts:
        raise ValueError(f"{spec['name']} does not mount the shared volume at {SHM}")
    limits = spec["resources"]["limits"]
    return ContainerPlan(
        name=spec["name"],
        args=spec.get("args"),
        env=container_env(docs, spec),
        uid=int(security["runAsUser"]),
        gid=int(security["runAsGroup"]),
        fs_group=int(security["fsGroup"]),
        read_only=bool(security.get("readOnlyRootFilesystem")),
        memory_limit=str(limits["memory"]),
        cpu_limit=str(limits["cpu"]),
        exec_probes=exec_probes,
        http_probes=http_probes,
        probe_budget_s=budget,
        probe_timeout_s=timeouts,
    )


def pod_plan(docs: list[Doc]) -> PodPlan:
    """The plan of the Deployment in rendered manifests ``docs``."""
    (deployment,) = find(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    if "command" in pod_containers(deployment)["cache-daemon"]:
        raise ValueError("the sidecar must keep the image's ENTRYPOINT (tini)")
    sidecars = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    ordered = [*sidecars, *pod["containers"]]
    (shm,) = (v for v in pod["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory")
    web = next(c for c in pod["containers"] if c["name"] == "web")
    sleep = web.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    return PodPlan(
        containers={c["name"]: _container(docs, pod, c) for c in ordered},
        shm_size_bytes=tmpfs_bytes(shm["emptyDir"]["sizeLimit"]),
        grace_period_s=float(pod.get("terminationGracePeriodSeconds", 30)),
        pre_stop_sleep_s=float(sleep),
    )


def _cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else quantity


def run_options(plan: ContainerPlan, volume: str, env: dict[str, str]) -> list[str]:
    """``podman run`` options for ``plan`` with the shared ``volume`` at /dev/shm and the
    environment ``env`` (the plan's, plus the test's overrides)."""
    options = [
        "--network=host",
        f"--user={plan.uid}:{plan.gid}",
        f"--group-add={plan.fs_group}",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--memory={plan.memory_limit.replace('Gi', 'g').replace('Mi', 'm')}",
        f"--cpus={_cpus(plan.cpu_limit)}",
        f"--mount=type=volume,source={volume},destination={SHM}",
        # The pod's /tmp is an emptyDir of the container's own, writable by the fsGroup.
        "--mount=type=tmpfs,destination=/tmp,tmpfs-size=64m,tmpfs-mode=1777",
    ]
    if plan.read_only:
        # Podman would add writable tmpfs at /run and /var/tmp; the kubelet does not.
        options += ["--read-only", "--read-only-tmpfs=false"]
    for key, value in sorted(env.items()):
        options.append(f"--env={key}={value}")
    return options
