"""``make image-test``: build the image and run the pod of deploy/k8s with Podman.

``python -m tests.deploy.image_check`` (root: Podman and Buildah run rootful here). Steps:

1. the base image (Debian bookworm + python3 from Debian packages, cached in .cache/image/);
2. the image, built from the Dockerfile on that base; its ENTRYPOINT, CMD, USER, WORKDIR and
   HEALTHCHECK as the Dockerfile says, and deploy/compose.yaml rendered against them;
3. the daemon container, then the web container, as the pod runs them (tests/deploy/_pod.py),
   sharing one memory-backed volume at /dev/shm made with compose.yaml's options;
4. /readyz, POST /predict, /metrics, the daemon's exec probes, the image's HEALTHCHECK in both
   containers, the shared volume's owners and modes, the read-only root filesystem;
5. the daemon SIGKILLed under traffic and started again: no 5xx, no connection error, no
   generation going back, a newer generation served;
6. SIGTERM to web (a request in flight must complete) then to the daemon: both exit 0 within
   the pod's grace period;
7. figures: image size, build time, start to ready.

Every container, volume and image made here is removed at the end (the cached base stays), and
the whole run is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from tests.concurrency import _http
from tests.deploy._base_image import ensure_base
from tests.deploy._compose import load, process_argv, volume_options
from tests.deploy._dockerfile import parse
from tests.deploy._image import free_port
from tests.deploy._manifests import BASE, ROOT, render
from tests.deploy._pod import pod_plan
from tests.deploy._pod_run import ImageCheckError, PodRun
from tests.deploy._podman import Podman, PodmanError

TOOLS = ("podman", "buildah", "mmdebstrap", "runc")
CACHE = ROOT / ".cache" / "image"
COMPOSE_SERVICES = {"cache-daemon": "daemon", "web": "web"}
BUILD_TIMEOUT_S = 1800.0
_started = time.monotonic()


def say(message: str) -> None:
    print(f"[image-test {time.monotonic() - _started:6.1f}s] {message}", flush=True)


def _ca_bundle() -> Path | None:
    """The CA bundle this machine's pip trusts, handed to the build as the pip-ca secret."""
    for name in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    return None


class _StepReporter:
    """Prints the build's current step when it changes, and at least every 30 s."""

    def __init__(self) -> None:
        self.step, self.at = "", 0.0

    def __call__(self, step: str) -> None:
        now = time.monotonic()
        if step != self.step or now - self.at >= 30.0:
            say(f"  build: {step}")
            self.step, self.at = step, now


def build(engine: Podman, base: str, tag: str, log: Path) -> float:
    """Build the image on ``base``; intermediate images it leaves are recorded for cleanup."""
    log.parent.mkdir(parents=True, exist_ok=True)
    before = set(engine.podman("images", "--all", "--quiet", "--no-trunc").stdout.split())
    start = time.monotonic()
    try:
        engine.build(
            tag, ROOT, {"BASE_IMAGE": base}, log, BUILD_TIMEOUT_S, _ca_bundle(), _StepReporter()
        )
    finally:
        after = set(engine.podman("images", "--all", "--quiet", "--no-trunc").stdout.split())
        engine.images.extend(sorted(after - before))
    return time.monotonic() - start


def check_image_config(engine: Podman, tag: str) -> dict[str, Any]:
    """The built image's configuration is the Dockerfile's, and compose.yaml's services run
    the pod's processes on it."""
    final = parse(ROOT / "Dockerfile")[-1]
    inspected = engine.inspect(tag)
    config: dict[str, Any] = inspected["Config"]
    entrypoint, cmd = config.get("Entrypoint") or [], config.get("Cmd") or []
    expected = {
        "Entrypoint": final.last("ENTRYPOINT").exec_form(),  # type: ignore[union-attr]
        "Cmd": final.last("CMD").exec_form(),  # type: ignore[union-attr]
        "User": final.last("USER").args,  # type: ignore[union-attr]
        "WorkingDir": final.workdir(),
    }
    actual = {key: config.get(key) for key in expected}
    if actual != expected:
        raise ImageCheckError(f"image config {actual} is not the Dockerfile's {expected}")
    healthcheck = (inspected.get("Healthcheck") or {}).get("Test")
    declared = ["CMD", *final.last("HEALTHCHECK").exec_form()]  # type: ignore[union-attr]
    if healthcheck != declared:
        raise ImageCheckError(f"image HEALTHCHECK {healthcheck} is not the Dockerfile's {declared}")
    plan = pod_plan(render(BASE))
    compose = load()
    for container, service in COMPOSE_SERVICES.items():
        ran = [*entrypoint, *(plan.containers[container].args or cmd)]
        rendered = process_argv(compose["services"][service], entrypoint, cmd)
        if rendered != ran:
            raise ImageCheckError(f"compose {service} runs {rendered}, the pod runs {ran}")
    say(f"image config: ENTRYPOINT {entrypoint} CMD {cmd} USER {config['User']}; compose agrees")
    return config


def check_serving(run: PodRun) -> None:
    port = run.web_port
    ready = _http.call(port, "GET", "/readyz")
    if ready.status != 200:
        raise run.fail(f"/readyz answered {ready.kind} {ready.status} {ready.body[:300]!r}")
    body = json.dumps({"inference_length": 4}).encode()
    predicted = _http.call(port, "POST", "/predict", body)
    if predicted.status != 200 or len(predicted.json()["predictions"]) != 4:
        raise run.fail(f"POST /predict answered {predicted.status} {predicted.body[:300]!r}")
    metrics = _http.call(port, "GET", "/metrics")
    if metrics.status != 200 or b"webapp_http_requests_total{" not in metrics.body:
        raise run.fail(f"/metrics answered {metrics.status} without the request counter")
    say(
        f"/readyz 200, POST /predict 200 (generation {predicted.headers['x-cache-generation']}),"
        " /metrics 200"
    )


def check_probes(run: PodRun) -> None:
    for kind in run.plan.containers["cache-daemon"].exec_probes:
        code, out, took = run.probe("cache-daemon", kind)
        if code != 0:
            raise run.fail(f"daemon {kind} exited {code}: {out}")
        say(f"daemon {kind} exit 0 in {took:.1f}s")
    for container in run.plan.containers:
        code, out = run.healthcheck(container)
        if code != 0:
            raise run.fail(f"the image's HEALTHCHECK in {container} exited {code}: {out}")
        say(f"image HEALTHCHECK in {container}: healthy")
    code, cmdline = run.exec(
        "cache-daemon", ["python", "-c", "print(open('/proc/1/cmdline').read().split('\\0'))"], 5
    )
    if code != 0 or not cmdline.startswith("['tini', '--', 'python', '-m', 'cache_daemon'"):
        raise run.fail(f"PID 1 of the daemon container is {cmdline}")


# Run in the web container: the shared volume's root and entries (uid, gid, mode), whether
# /dev/shm is a tmpfs, and whether the root filesystem refuses a write.
_INSPECT = """
import errno, json, os, stat
def info(p):
    s = os.stat(p)
    return [s.st_uid, s.st_gid, oct(stat.S_IMODE(s.st_mode))]
shm = os.environ["SHM_DIR"]
fs = [l.split()[2] for l in open("/proc/mounts") if l.split()[1] == "/dev/shm"]
try:
    open("/app/probe-write", "w")
    ro = "writable"
except OSError as e:
    ro = errno.errorcode[e.errno]
print(json.dumps({"root": info("/dev/shm"), "fs": fs, "rootfs": ro, "shm_dir": info(shm),
    "entries": {n: info("/dev/shm/" + n) for n in sorted(os.listdir("/dev/shm"))},
    "window": {n: info(shm + "/" + n) for n in sorted(os.listdir(shm))}}))
"""


def check_volume(run: PodRun) -> None:
    code, out = run.exec("web", ["python", "-c", _INSPECT], 10)
    if code != 0:
        raise run.fail(f"inspecting /dev/shm in web failed: {out}")
    seen = json.loads(out)
    uid = run.plan.containers["web"].uid
    problems = []
    if seen["fs"] != ["tmpfs"]:
        problems.append(f"/dev/shm is {seen['fs']}, not one tmpfs")
    if seen["rootfs"] != "EROFS":
        problems.append(f"a write to /app gave {seen['rootfs']}, not EROFS")
    if seen["shm_dir"] != [uid, uid, "0o750"]:
        problems.append(f"SHM_DIR is {seen['shm_dir']}, not {uid}:{uid} 0750")
    for group in ("entries", "window"):
        for entry, (owner, _, _) in seen[group].items():
            if owner != uid:
                problems.append(f"{entry} in /dev/shm is owned by {owner}")
    if problems:
        raise run.fail("shared volume: " + "; ".join(problems))
    say(f"/dev/shm: tmpfs {seen['root']}, entries {seen['entries']}; root fs read-only")


# Longer than a worker takes to follow a publication (inotify, or its poll without it).
_FOLLOW_S = 1.0


def _generation(port: int) -> int:
    reply = _http.call(port, "GET", "/cache", timeout=10)
    return int(reply.json()["generation"]) if reply.status == 200 else -1


def _starts_logged(run: PodRun) -> int:
    """How many runs of the daemon container have logged their start."""
    return run.engine.logs(run.name("cache-daemon"), -1).count('"message": "starting"')


def kill_daemon_under_traffic(run: PodRun) -> dict[str, Any]:
    port = run.web_port
    load = _http.Load(port, "POST", "/predict", b"{}", threads=3).start()
    # What the kubelet's readiness probe would see meanwhile: reported, not asserted (a
    # restart slower than MAX_DATA_AGE_MS takes the pod out of the Service, by design).
    readiness = _http.Load(port, "GET", "/readyz", threads=1).start()
    try:
        time.sleep(2.0)
        killed_ns = time.monotonic_ns()
        run.signal("cache-daemon", "KILL")
        code, _ = run.engine.wait_exit(run.name("cache-daemon"), 30)
        if code != 137:
            raise run.fail(f"the SIGKILLed daemon container exited {code}, not 137")
        # Read only now: the killed daemon may have published after the signal was sent, and
        # a generation it published must not pass for one of the restarted daemon.
        time.sleep(_FOLLOW_S)
        before = _generation(port)
        run.restart("cache-daemon")
        # The startup probe can pass on the killed daemon's heartbeat, still fresh in the
        # shared volume, while the new process is still importing; its own log line comes
        # after its signal handlers are in place.
        run.until(
            "cache-daemon",
            "the restarted daemon's start",
            lambda: _starts_logged(run) >= 2,
            60,
        )
        run.wait_started("cache-daemon")
        run.until(
            "cache-daemon",
            f"a generation after {before} served",
            lambda: _generation(port) > before,
            60,
        )
        back = (time.monotonic_ns() - killed_ns) / 1e9
        time.sleep(1.0)
    finally:
        results = load.stop()
        ready = _http.summarize(readiness.stop())
    counts = _http.summarize(results)
    if counts != {"ok 200": len(results)}:
        raise run.fail(f"requests while the daemon was killed and restarted: {counts}")
    generations = [int(r.headers["x-cache-generation"]) for r in results]
    floor = min(g for r, g in zip(results, generations, strict=True) if r.sent_ns < killed_ns)
    reset = [
        g for r, g in zip(results, generations, strict=True) if r.sent_ns >= killed_ns and g < floor
    ]
    if reset or generations[-1] <= before:
        raise run.fail(
            f"generations after the restart: {reset[:5]} below {floor}, last {generations[-1]}"
        )
    say(
        f"daemon SIGKILLed at generation {before}, restarted, newer generation served after "
        f"{back:.1f}s; /predict {counts}; /readyz {ready}; generations "
        f"{generations[0]}..{max(generations)}"
    )
    return {"requests": counts, "readyz": ready, "generation_back_after_s": round(back, 1)}


def _in_flight(port: int, body: bytes) -> socket.socket:
    """A request whose body is half sent: in flight when the server is told to stop."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body[: len(body) // 2])
    return sock


def _finish(sock: socket.socket, body: bytes) -> _http.Result:
    with sock:
        sock.sendall(body[len(body) // 2 :])
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return _http.parse_response(b"".join(chunks))


def _logged(run: PodRun, container: str, *needles: str) -> None:
    """The container's log holds every needle: the signal reached the program through tini
    and it stopped on its own (not killed when the grace period ran out)."""
    text = run.engine.logs(run.name(container), -1)
    missing = [n for n in needles if n not in text]
    if missing:
        raise run.fail(f"{container} never logged {missing}")


def stop_with_sigterm(run: PodRun) -> dict[str, float]:
    """SIGTERM to web, with requests in flight and traffic running, then to the daemon (the
    sidecar stops after the main container). The preStop pause is not slept: it only lets
    endpoints drop the pod, and the exit must fit the grace period left after it."""
    port, plan = run.web_port, run.plan
    body = json.dumps({"inference_length": 4}).encode()
    pending = [_in_flight(port, body) for _ in range(2)]
    load = _http.Load(port, "POST", "/predict", b"{}", threads=2).start()
    time.sleep(1.0)
    run.signal("web", "TERM")
    time.sleep(1.0)  # Gunicorn has stopped accepting; the bodies arrive only now
    finished = [_finish(sock, body) for sock in pending]
    budget = plan.grace_period_s - plan.pre_stop_sleep_s
    code, took_web = run.engine.wait_exit(run.name("web"), budget)
    results = load.stop()
    if code != 0:
        raise run.fail(f"web exited {code} after SIGTERM")
    bad = [f"{r.kind} {r.status}" for r in finished if (r.kind, r.status) != ("ok", 200)]
    if bad:
        raise run.fail(f"requests in flight at SIGTERM ended as {bad}")
    counts = _http.summarize(results)
    if set(counts) - {"ok 200", "refused", "closed"}:
        raise run.fail(f"requests around SIGTERM: {counts}")
    _logged(run, "web", '"Handling signal: term"', '"Shutting down: Master"')
    say(f"web: SIGTERM -> exit 0 in {took_web + 1:.1f}s; in flight: 2 x 200; traffic {counts}")
    run.signal("cache-daemon", "TERM")
    code, took_daemon = run.engine.wait_exit(run.name("cache-daemon"), plan.grace_period_s)
    if code != 0:
        state = run.engine.state(run.name("cache-daemon"))
        raise run.fail(f"the daemon exited {code} after SIGTERM (state {state})")
    _logged(run, "cache-daemon", '"message": "stopped"')
    say(f"daemon: SIGTERM -> exit 0 in {took_daemon:.1f}s")
    return {"web_stop_s": round(took_web + 1, 1), "daemon_stop_s": round(took_daemon, 1)}


def run_pod(engine: Podman, tag: str, prefix: str) -> dict[str, Any]:
    plan = pod_plan(render(BASE))
    volume = f"{prefix}-shm"
    engine.create_volume(volume, volume_options(load(), "shm"))
    run = PodRun(engine, plan, tag, prefix, volume, free_port())
    start = time.monotonic()
    run.start("cache-daemon")
    run.wait_started("cache-daemon")
    say(f"daemon started (startup probe passed) after {time.monotonic() - start:.1f}s")
    run.start("web")
    run.wait_started("web")
    run.until("web", "/readyz 200", lambda: run.http_status("/readyz") == 200, 60)
    ready_s = time.monotonic() - start
    say(f"web ready on 127.0.0.1:{run.web_port} {ready_s:.1f}s after the daemon's start")
    check_serving(run)
    check_probes(run)
    check_volume(run)
    figures: dict[str, Any] = {"start_to_ready_s": round(ready_s, 1)}
    figures["daemon_kill"] = kill_daemon_under_traffic(run)
    figures.update(stop_with_sigterm(run))
    return figures


def _on_timeout(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("make image-test ran out of time (--timeout)")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("make image-test was terminated (SIGTERM)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=2700.0, help="bound on the whole run, s")
    parser.add_argument(
        "--image", help="check this existing image instead of building one (it is kept)"
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make image-test runs Podman rootful: run it as root", file=sys.stderr)
        return 2
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(
            f"missing {', '.join(missing)}: `make image-test` installs them (root)", file=sys.stderr
        )
        return 2
    signal.signal(signal.SIGALRM, _on_timeout)
    signal.signal(signal.SIGTERM, _on_term)  # still clean up what was made
    signal.alarm(int(args.timeout))
    prefix = f"shmf-image-test-{os.getpid()}"
    tag = f"localhost/{prefix}:latest"
    figures: dict[str, Any] = {}
    failed: BaseException | None = None
    with tempfile.TemporaryDirectory(prefix="image-test-") as tmp:
        engine = Podman(Path(tmp))
        try:
            if args.image:
                tag = args.image
            else:
                started = time.monotonic()
                base = ensure_base(engine, CACHE, say)
                figures["base_s"] = round(time.monotonic() - started, 1)
                say(f"building {tag} on {base} (log {CACHE / 'build.log'})")
                figures["build_s"] = round(build(engine, base, tag, CACHE / "build.log"), 1)
            size = engine.image_size(tag)
            figures["image_mb"] = round(size / 1e6, 1)
            say(f"image {tag}: {figures['image_mb']} MB")
            check_image_config(engine, tag)
            figures.update(run_pod(engine, tag, prefix))
        except (ImageCheckError, PodmanError, TimeoutError) as exc:
            failed = exc
        finally:
            signal.alarm(0)
            problems = engine.cleanup()
    if problems:
        print("cleanup left: " + "; ".join(problems), file=sys.stderr)
    figures["total_s"] = round(time.monotonic() - _started, 1)
    if failed is not None:
        # The verdict goes last: a CI log is often read from its tail, below the logs.
        if isinstance(failed, ImageCheckError) and failed.logs:
            print(failed.logs, file=sys.stderr)
        print(f"IMAGE TEST FAILED: {failed}", file=sys.stderr)
        return 1
    say("cleaned up every container, volume and image of this run")
    print("FIGURES image " + json.dumps(figures), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
