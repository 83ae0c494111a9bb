"""Render ``deploy/compose.yaml`` as Compose would for the fields the tests compare: anchors and
merge keys resolved, ``${VAR:-default}`` interpolated from an environment, and each service's
process command line as the container runtime builds it from an image's ENTRYPOINT and CMD."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tests.deploy._manifests import ROOT

__all__ = ["COMPOSE", "compose_env", "load", "process_argv", "volume_options"]

COMPOSE = ROOT / "deploy" / "compose.yaml"
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")

Doc = dict[str, Any]


def _interpolate(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, list):
        return [_interpolate(v, environ) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, environ) for k, v in value.items()}
    return value


def load(environ: Mapping[str, str] | None = None) -> Doc:
    """The Compose file with merge keys resolved (PyYAML applies ``<<``) and variables
    interpolated from ``environ`` (default: none set, so every default applies)."""
    raw = yaml.safe_load(COMPOSE.read_text())
    rendered: Doc = _interpolate(raw, environ or {})
    return rendered


def compose_env(service: Doc) -> dict[str, str]:
    """A service's ``environment`` as strings (a mapping or a ``KEY=value`` list)."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def process_argv(service: Doc, entrypoint: Sequence[str], cmd: Sequence[str]) -> list[str]:
    """The command line of a service's main process: the image's ENTRYPOINT (or the service's
    ``entrypoint``, which also drops the image's CMD), then ``command`` or else the CMD."""
    if "entrypoint" in service:
        return [*service["entrypoint"], *service.get("command", [])]
    return [*entrypoint, *service.get("command", cmd)]


def volume_options(compose: Doc, name: str) -> dict[str, str]:
    """The ``driver_opts`` of a named volume (``podman volume create --opt`` takes the same)."""
    volume = compose["volumes"][name]
    assert volume.get("driver", "local") == "local", f"volume {name} needs the local driver"
    return {k: str(v) for k, v in volume["driver_opts"].items()}
