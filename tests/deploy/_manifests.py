"""Render the kustomize trees under ``deploy/k8s`` and look things up in the result."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "BASE",
    "OVERLAYS",
    "ROOT",
    "container_env",
    "find",
    "pod_containers",
    "render",
    "tool",
]

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = sorted(p.parent for p in (K8S / "overlays").glob("*/kustomization.yaml"))

Doc = dict[str, Any]


def tool(name: str) -> Path:
    """A console script installed in the venv that runs the tests (a dev dependency)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing from {path.parent}: run `make venv`"
    return path


def render(directory: Path) -> list[Doc]:
    """``kubectl kustomize directory`` as a list of documents."""
    out = subprocess.run(
        [str(tool("kubectl")), "kustomize", str(directory)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    """Documents of ``kind`` (and ``name`` prefix: generated names carry a hash suffix)."""
    return [
        d
        for d in docs
        if d["kind"] == kind and (name is None or d["metadata"]["name"].startswith(name))
    ]


def pod_containers(deployment: Doc) -> dict[str, Doc]:
    """Long-running containers of the pod by name: regular ones and native sidecars (init
    containers with ``restartPolicy: Always``)."""
    spec = deployment["spec"]["template"]["spec"]
    out = {c["name"]: c for c in spec.get("containers", [])}
    for c in spec.get("initContainers", []):
        if c.get("restartPolicy") == "Always":
            out[c["name"]] = c
    return out


def container_env(
    docs: list[Doc], container: Doc, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, str]:
    """The variables a container gets from its ``envFrom`` ConfigMaps and ``env`` entries
    (secret values from ``secrets[name][key]``; an absent optional one is left out)."""
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in find(docs, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        assert ref in configmaps, f"{container['name']} refers to a missing ConfigMap {ref}"
        env.update(configmaps[ref])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        value = (secrets or {}).get(ref["name"], {}).get(ref["key"])
        if value is None:
            assert ref.get("optional"), f"{item['name']} needs Secret {ref['name']}"
            continue
        env[item["name"]] = value
    return env
