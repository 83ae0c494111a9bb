"""Podman and Buildah without a daemon, as this kind of machine allows, for the image test.

Settings the machine needs (a cgroupfs manager, the runc runtime, no default ulimits: setting
RLIMIT_NOFILE/NPROC is refused here, and crun rejects hybrid cgroups) live in a
``containers.conf`` written to a temporary directory and passed through ``CONTAINERS_CONF``;
the host's own configuration is left untouched.

Everything a run creates is named ``<prefix>-...`` (one prefix per run) and recorded, so
:meth:`Podman.cleanup` removes exactly that, whatever failed before.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONTAINERS_CONF", "Podman", "PodmanError"]

CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
"""


_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _tmpfs_mount_options(options: str) -> str:
    out = []
    for item in options.split(","):
        key, _, value = item.partition("=")
        if key != "size":
            out.append(item)
            continue
        number = value.rstrip("kmgKMG")
        size = int(number) * _SIZE_UNITS[value[len(number) :].lower()]
        out.append(f"nr_blocks={size // os.sysconf('SC_PAGE_SIZE')}")
    return ",".join(out)


def _last_step(log: Path) -> str:
    """The last ``STEP`` line Buildah wrote (the instruction being carried out)."""
    with log.open("rb") as source:
        source.seek(max(0, log.stat().st_size - 65536))
        lines = source.read().decode(errors="replace").splitlines()
    steps = [line for line in lines if "STEP " in line]
    return steps[-1][:120] if steps else "starting"


class PodmanError(RuntimeError):
    """A podman or buildah command failed; the message carries its output."""


class Podman:
    """Runs ``podman``/``buildah`` with the machine's settings; remembers what it created."""

    def __init__(self, conf_dir: Path) -> None:
        conf = conf_dir / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.containers: list[str] = []
        self.volumes: list[str] = []
        self.images: list[str] = []

    def _run(
        self, tool: str, args: Sequence[str], *, timeout: float, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                [tool, *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PodmanError(f"{tool} {' '.join(args)} took longer than {timeout} s") from exc
        if check and done.returncode != 0:
            raise PodmanError(
                f"{tool} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-4000:]}"
            )
        return done

    def podman(
        self, *args: str, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``podman args...``; PodmanError on a non-zero exit when ``check``."""
        return self._run("podman", args, timeout=timeout, check=check)

    def build(
        self,
        tag: str,
        context: Path,
        build_args: dict[str, str],
        log: Path,
        timeout: float,
        ca_bundle: Path | None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """``buildah bud`` in chroot isolation (no OCI runtime needed), Docker format (the OCI
        format has no HEALTHCHECK), no intermediate images kept; output streams to ``log``.
        ``ca_bundle`` becomes the Dockerfile's optional ``pip-ca`` build secret; ``progress``
        gets the current build step about once a second."""
        args = ["bud", "--isolation", "chroot", "--format", "docker", "--layers=false"]
        args += ["--network", "host", "--pull=never", "-t", tag]
        if ca_bundle is not None:
            args += ["--secret", f"id=pip-ca,src={ca_bundle}"]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        self.images.append(tag)
        deadline = time.monotonic() + timeout
        with log.open("w") as sink:
            proc = subprocess.Popen(
                ["buildah", *args, str(context)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
            try:
                while (code := proc.poll()) is None:
                    if time.monotonic() > deadline:
                        raise PodmanError(f"the build took longer than {timeout} s; see {log}")
                    time.sleep(1.0)
                    if progress is not None:
                        progress(_last_step(log))
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(30)
        if code != 0:
            tail = log.read_text(errors="replace")[-4000:]
            raise PodmanError(f"buildah bud exited {code}:\n{tail}")

    def image_exists(self, ref: str) -> bool:
        return self.podman("image", "exists", ref, check=False).returncode == 0

    def inspect(self, ref: str, kind: str = "image") -> dict[str, Any]:
        """``podman <kind> inspect`` of one object."""
        (found,) = json.loads(self.podman(kind, "inspect", ref).stdout)
        return found  # type: ignore[no-any-return]

    def create_volume(self, name: str, options: dict[str, str]) -> None:
        """A local volume with Docker's ``driver_opts``. For a tmpfs, ``size=`` in ``o`` becomes
        ``nr_blocks=`` (the same bound in pages): Podman 4.3 takes ``size`` as an XFS quota."""
        args = ["volume", "create"]
        if options.get("type") == "tmpfs":
            options = {**options, "o": _tmpfs_mount_options(options.get("o", ""))}
        for key, value in options.items():
            args += ["--opt", f"{key}={value}"]
        self.volumes.append(name)
        self.podman(*args, name)

    def run(self, name: str, options: Sequence[str], image: str, argv: Sequence[str]) -> None:
        """``podman run --detach`` (no ``--rm``: the exit code is read after it stops)."""
        self.containers.append(name)
        self.podman("run", "--detach", "--name", name, *options, image, *argv, timeout=120)

    def state(self, name: str) -> dict[str, Any]:
        state: dict[str, Any] = self.inspect(name, "container")["State"]
        return state

    def wait_exit(self, name: str, timeout: float) -> tuple[int, float]:
        """Wait until the container has stopped: (exit code, seconds waited)."""
        start = time.monotonic()
        while True:
            state = self.state(name)
            if not state["Running"]:
                return int(state["ExitCode"]), time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise PodmanError(f"{name} still runs after {timeout} s")
            time.sleep(0.1)

    def logs(self, name: str, tail: int = 60) -> str:
        """The last ``tail`` lines of a container's output (-1: all of it)."""
        done = self.podman("logs", "--tail", str(tail), name, check=False)
        return done.stdout + done.stderr

    def image_size(self, ref: str) -> int:
        """Bytes of the image's layers, uncompressed (what ``podman images`` reports)."""
        return int(self.inspect(ref)["Size"])

    def cleanup(self) -> list[str]:
        """Remove every container, volume and image this object created; returns problems."""
        problems = []
        for name in reversed(self.containers):
            done = self.podman("rm", "--force", "--volumes", name, check=False, timeout=60)
            if done.returncode != 0 and "no such container" not in done.stderr:
                problems.append(done.stderr.strip())
        for name in self.volumes:
            done = self.podman("volume", "rm", "--force", name, check=False)
            if done.returncode != 0 and "no such volume" not in done.stderr:
                problems.append(done.stderr.strip())
        for ref in self.images:
            if self.image_exists(ref):
                done = self.podman("rmi", "--force", ref, check=False, timeout=120)
                if done.returncode != 0:
                    problems.append(done.stderr.strip())
        return problems
