"""Run the image's commands on the host, as the Dockerfile and the pod spec declare them.

The environment is the image's (its ENV instructions, then the pod's ConfigMaps and Secrets
where a test passes them), with each path inside the image mapped to its host counterpart by
:data:`IMAGE_PATHS`. A path-valued variable without a mapping is an error, so a new ENV in the
Dockerfile cannot silently run with a path that exists only in the image.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy._dockerfile import Stage
from tests.deploy._manifests import ROOT

__all__ = ["HostLayout", "Service", "free_port", "host_env", "resolve", "train_like_the_build"]

# The base image's PATH (python:*-slim), which the Dockerfile's ENV PATH extends.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Passed through from the host: OpenBLAS settings this machine needs for correct results.
PASSTHROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL")


@dataclass(frozen=True)
class HostLayout:
    """Where the image's paths live on this host for one test."""

    shm_mount: Path  # the memory-backed mount (/dev/shm in the pod)
    model_dir: Path  # /opt/model in the build stage = /app/model in the runtime stage
    home: Path

    def mapping(self) -> dict[str, Path]:
        """Image path prefix -> host path; the longest matching prefix wins."""
        return {
            "/dev/shm": self.shm_mount,
            "/app/model": self.model_dir,
            "/opt/model": self.model_dir,
            "/app": ROOT,
            "/opt/venv": Path(sys.prefix),
        }

    def map(self, value: str, *, strict: bool = True) -> str:
        """The host path for an image path; unmapped absolute paths fail when ``strict``."""
        for prefix, host in sorted(self.mapping().items(), key=lambda kv: -len(kv[0])):
            if value == prefix or value.startswith(prefix + "/"):
                return str(host) + value[len(prefix) :]
        if strict:
            raise AssertionError(f"no host mapping for the image path {value!r}")
        return value


def host_env(image_env: Mapping[str, str], layout: HostLayout) -> dict[str, str]:
    """The image's environment with image paths replaced by host paths."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env["HOME"] = str(layout.home)
    env["TMPDIR"] = str(layout.home)  # the pod's /tmp is an emptyDir of its own
    for key, value in image_env.items():
        if key == "PATH":
            env[key] = os.pathsep.join(layout.map(p, strict=False) for p in value.split(":"))
        elif value.startswith("/"):
            env[key] = layout.map(value)
        else:
            env[key] = value
    return env


def resolve(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` with its program looked up on the environment's PATH, as exec form does."""
    program = shutil.which(argv[0], path=env["PATH"])
    assert program is not None, f"{argv[0]} is not on PATH {env['PATH']}"
    return [program, *argv[1:]]


def train_like_the_build(build: Stage, layout: HostLayout, python_env: Mapping[str, str]) -> Path:
    """Run the build stage's model-training RUN line on the host; return the artifact path."""
    (run,) = [r for r in build.all("RUN") if "forecasting.train" in r.args]
    argv = [layout.map(a, strict=False) if a.startswith("/") else a for a in shlex.split(run.args)]
    subprocess.run(resolve(argv, python_env), cwd=ROOT, env=python_env, check=True, timeout=180)
    artifact = layout.model_dir / "model.skops"
    assert artifact.is_file() and artifact.with_name("model.skops.sha256").is_file()
    return artifact


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    """Child processes started by a test, with their logs; stopped (by pid) on exit."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        """Start ``argv`` with exactly ``env`` in ``cwd``; output goes to ``<name>.log``."""
        log = (self._log_dir / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def logs(self) -> str:
        """The tail of every child's log, for assertion messages."""
        parts = []
        for name in self.procs:
            text = (self._log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} ---\n{text[-3000:]}")
        return "\n".join(parts)

    def alive(self) -> None:
        """Fail when a child has exited."""
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"

    def stop(self, name: str, timeout_s: float = 30.0) -> int:
        """SIGTERM (what the kubelet sends through tini), then the exit status."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            raise AssertionError(
                f"{name} ignored SIGTERM for {timeout_s} s\n{self.logs()}"
            ) from None

    @contextlib.contextmanager
    def running(self) -> Iterator[Service]:
        """Stop every child that is still running when the block ends."""
        try:
            yield self
        finally:
            for proc in reversed(list(self.procs.values())):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)


def wait_until(predicate: object, timeout_s: float, service: Service, what: str) -> None:
    """Poll ``predicate()`` until true, failing with the logs after ``timeout_s``."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        service.alive()
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout_s} s\n{service.logs()}")
