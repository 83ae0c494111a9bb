"""Run the image's commands on the host, as the Dockerfile and the pod spec declare them.

The image's file system is staged in a directory (:class:`Rootfs`): the runtime stage's COPY
instructions are carried out from the build context (filtered by ``.dockerignore``) and from the
host stand-in of the build stage, so a file the image lacks is missing here too. Two image paths
stand for host ones instead: ``/opt/venv`` is the venv running the tests (the same packages the
build stage installs), and ``/dev/shm`` is a fresh directory on this host's ``/dev/shm`` (the
pod's memory-backed volume). The environment is the image's ENV (then the pod's ConfigMaps and
Secrets, where a test passes them) with those paths mapped.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.deploy._dockerfile import Stage, ignored, read_dockerignore
from tests.deploy._manifests import ROOT

__all__ = [
    "BASE_IMAGE_PATH",
    "Rootfs",
    "Service",
    "free_port",
    "host_env",
    "resolve",
    "stage_runtime",
    "train_like_the_build",
    "wait_until",
]

# The base image's PATH (python:*-slim), which the Dockerfile's ENV PATH extends.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV = "/opt/venv"
SHM = "/dev/shm"
# Passed through from the host: OpenBLAS settings this machine needs for correct results.
PASSTHROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LANG", "LC_ALL")


def _under(path: str, prefix: str) -> str | None:
    """The rest of ``path`` below ``prefix`` ("" for the prefix itself), or None."""
    if path == prefix:
        return ""
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return None


@dataclass(frozen=True)
class Rootfs:
    """A host directory standing for an image's ``/``, plus the two stand-ins."""

    root: Path
    shm_mount: Path

    def map(self, path: str, *, must_exist: bool = True) -> str:
        """The host path of an absolute image path."""
        rest = _under(path, VENV)
        if rest is not None:
            return sys.prefix + rest
        rest = _under(path, SHM)
        if rest is not None:
            return str(self.shm_mount) + rest
        host = self.root / path.lstrip("/")
        if must_exist and not host.exists():
            raise AssertionError(f"{path} is not in the image (staged at {self.root})")
        return str(host)


def host_env(image_env: Mapping[str, str], rootfs: Rootfs, home: Path) -> dict[str, str]:
    """The image's environment with image paths replaced by host paths. An absolute path that
    the image does not contain is an error (a variable pointing at a missing file)."""
    env = {k: os.environ[k] for k in PASSTHROUGH if k in os.environ}
    env["HOME"] = str(home)
    env["TMPDIR"] = str(home)  # the pod's /tmp is an emptyDir of its own
    for key, value in image_env.items():
        if key == "PATH":
            # Only the venv is the image's own; the system directories exist on both sides.
            env[key] = os.pathsep.join(
                rootfs.map(p) if _under(p, VENV) is not None else p for p in value.split(":")
            )
        elif value.startswith("/"):
            env[key] = rootfs.map(value, must_exist=_under(value, SHM) is None)
        else:
            env[key] = value
    return env


def resolve(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """``argv`` with its program looked up on the environment's PATH, as exec form does."""
    program = shutil.which(argv[0], path=env["PATH"])
    assert program is not None, f"{argv[0]} is not on PATH {env['PATH']}"
    return [program, *argv[1:]]


def train_like_the_build(build: Stage, build_root: Rootfs, home: Path) -> None:
    """Run the build stage's model-training RUN line, writing under ``build_root``.

    The build stage copies the context verbatim into its WORKDIR, so the command runs in the
    context (the repository) itself.
    """
    (run,) = [r for r in build.all("RUN") if "forecasting.train" in r.args]
    argv = [
        build_root.map(a, must_exist=False) if a.startswith("/") else a
        for a in shlex.split(run.args)
    ]
    env = host_env(build.env({"PATH": BASE_IMAGE_PATH}), build_root, home)
    subprocess.run(resolve(argv, env), cwd=ROOT, env=env, check=True, timeout=180)


def stage_runtime(final: Stage, stages: Sequence[Stage], build_root: Rootfs, root: Path) -> None:
    """Carry out the runtime stage's WORKDIR and COPY instructions into ``root``."""
    rules = read_dockerignore(ROOT / ".dockerignore")
    names = {s.name for s in stages if s.name}
    workdir = "/"
    for instruction in final.instructions:
        if instruction.keyword == "WORKDIR":
            workdir = posixpath.join(workdir, instruction.args)
            (root / workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        if instruction.keyword != "COPY":
            continue
        *sources, dest = instruction.operands()
        target = posixpath.join(workdir, dest)
        origin = instruction.flags().get("from")
        for source in sources:
            if origin is not None:
                assert origin in names, f"line {instruction.line}: unknown stage {origin}"
                if source.rstrip("/") == VENV:
                    assert target.rstrip("/") == VENV, "the venv must keep its path"
                    continue  # the test's venv stands for it
                host = Path(build_root.map(source))
            else:
                host = ROOT / source
            into_dir = dest.endswith("/") or len(sources) > 1 or host.is_dir()
            _copy(host, root / target.lstrip("/"), into_dir=into_dir, rules=rules)


def _copy(
    source: Path, dest: Path, *, into_dir: bool, rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    def allowed(path: Path) -> bool:
        try:
            relative = path.relative_to(ROOT).as_posix()
        except ValueError:
            return True  # from another stage: no .dockerignore applies
        return not ignored(relative, rules)

    if source.is_dir():
        for path in source.rglob("*"):
            if path.is_file() and allowed(path):
                out = dest / path.relative_to(source)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
        return
    assert allowed(source), f"{source} is excluded from the build context"
    out = dest / source.name if into_dir else dest
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, out)


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
        with (self._log_dir / f"{name}.log").open("wb") as log:
            self.procs[name] = subprocess.Popen(
                list(argv), env=dict(env), cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )

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
        """Kill every child that is still running when the block ends."""
        try:
            yield self
        finally:
            for proc in reversed(list(self.procs.values())):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, service: Service, what: str
) -> None:
    """Poll ``predicate()`` until true, failing with the logs after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        service.alive()
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout_s} s\n{service.logs()}")
