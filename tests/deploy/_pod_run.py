"""The pod's two containers running under Podman, driven as the kubelet drives them: the
sidecar first until its startup probe passes, then the web container; exec probes; a killed
container started again; SIGTERM and the wait for the exit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tests.concurrency import _http
from tests.deploy._pod import ContainerPlan, PodPlan, run_options
from tests.deploy._podman import Podman

__all__ = ["ImageCheckError", "PodRun"]

POLL_S = 0.5
# podman exec itself costs up to a few seconds on a busy machine (a new runc process); the
# probe's own timeoutSeconds bounds the command, this bounds the whole call.
EXEC_OVERHEAD_S = 20.0


class ImageCheckError(AssertionError):
    """A check of the image test failed: ``str()`` says which; ``logs`` holds the containers'
    output at that moment (empty when no container ran yet)."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


@dataclass
class PodRun:
    """One run of the pod: container names are ``<prefix>-<container>``."""

    engine: Podman
    plan: PodPlan
    image: str
    prefix: str
    volume: str
    web_port: int

    def name(self, container: str) -> str:
        return f"{self.prefix}-{container}"

    def env(self, container: str) -> dict[str, str]:
        """The container's variables: the pod's, and for web the loopback listen address."""
        env = dict(self.plan.containers[container].env)
        if container == "web":
            env.update(PORT=str(self.web_port), WEB_HOST="127.0.0.1")
        return env

    def start(self, container: str) -> None:
        plan = self.plan.containers[container]
        options = run_options(plan, self.volume, self.env(container))
        self.engine.run(self.name(container), options, self.image, plan.args or [])

    def logs(self) -> str:
        parts = []
        for container in self.plan.containers:
            if self.name(container) in self.engine.containers:
                parts.append(f"--- {container} ---\n{self.engine.logs(self.name(container))}")
        return "\n".join(parts)

    def fail(self, message: str) -> ImageCheckError:
        return ImageCheckError(message, self.logs())

    def running(self, container: str) -> None:
        state = self.engine.state(self.name(container))
        if not state["Running"]:
            raise self.fail(f"{container} exited with {state['ExitCode']}")

    def exec(self, container: str, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container as its user, with its environment (an exec probe)."""
        done = self.engine.podman(
            "exec", self.name(container), *argv, check=False, timeout=timeout + EXEC_OVERHEAD_S
        )
        return done.returncode, (done.stdout + done.stderr).strip()

    def probe(self, container: str, kind: str) -> tuple[int, str, float]:
        """One exec probe of the manifests: (exit code, output, seconds)."""
        plan: ContainerPlan = self.plan.containers[container]
        start = time.monotonic()
        code, out = self.exec(container, plan.exec_probes[kind], plan.probe_timeout_s[kind])
        return code, out, time.monotonic() - start

    def until(self, container: str, what: str, check: Callable[[], bool], budget: float) -> None:
        """Poll ``check`` until it holds, failing when ``container`` exits or ``budget`` (the
        probe's period x failureThreshold) runs out."""
        deadline = time.monotonic() + budget
        while not check():
            self.running(container)
            if time.monotonic() > deadline:
                raise self.fail(f"{what}: not within {budget:.0f} s")
            time.sleep(POLL_S)

    def wait_started(self, container: str) -> None:
        """The startup probe passes (exec or HTTP), within its budget."""
        plan = self.plan.containers[container]
        budget = plan.probe_budget_s["startupProbe"]
        if "startupProbe" in plan.exec_probes:
            check = lambda: self.probe(container, "startupProbe")[0] == 0  # noqa: E731
        else:
            path = plan.http_probes["startupProbe"]
            check = lambda: self.http_status(path) == 200  # noqa: E731
        self.until(container, f"{container} startup probe", check, budget)

    def http_status(self, path: str) -> int:
        return _http.call(self.web_port, "GET", path, timeout=5).status

    def signal(self, container: str, name: str) -> None:
        self.engine.podman("kill", "--signal", name, self.name(container))

    def restart(self, container: str) -> None:
        """Start the stopped container again with the same spec and volumes, as the kubelet
        restarts a container of a running pod."""
        self.engine.podman("start", self.name(container), timeout=120)

    def healthcheck(self, container: str) -> tuple[int, str]:
        """The image's own HEALTHCHECK, run by Podman in the container."""
        done = self.engine.podman(
            "healthcheck", "run", self.name(container), check=False, timeout=EXEC_OVERHEAD_S
        )
        return done.returncode, (done.stdout + done.stderr).strip()
