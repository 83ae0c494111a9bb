"""The whole service as real processes: the daemon (Kafka or replay source, S3 snapshot and
model), Gunicorn with several workers, one shm directory. Nothing is mocked.

Built from the project's own test helpers: ``tests.webapp._support.GunicornServer`` (Gunicorn on
a socket bound here, passed as ``fd://N``), ``tests.webapp._support.train_artifact`` and
``tests.locust._service.clean_env``; the daemon is ``python -m cache_daemon``, restartable, so
the scenarios can SIGKILL/SIGTERM it and start it again on the same directory.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from cache_daemon.status import read_status
from shm import Reader, Snapshot
from tests._stack import StackHandle
from tests._wait import wait_until
from tests.concurrency import _http
from tests.concurrency._series import snapshot_bytes
from tests.locust._service import clean_env
from tests.webapp._support import GunicornServer

__all__ = ["Daemon", "Service", "running_service", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]


class Daemon:
    """``python -m cache_daemon`` as a child that can be killed and started again; every run
    appends its log lines to the same file."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        self.env = dict(env)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.running
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cache_daemon"],
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL and reap."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Service:
    """Handles on the running parts; ``web`` is None until :meth:`start_web`."""

    work: Path
    shm_dir: Path
    daemon: Daemon
    max_age_ms: int
    topic: str | None = None
    bucket: str | None = None
    web: GunicornServer | None = None
    _reader: Reader | None = field(default=None, repr=False)

    # -- the shm directory and the status file ---------------------------------------------
    def snapshot(self) -> Snapshot | None:
        if self._reader is None:
            if not self.shm_dir.exists():
                return None
            self._reader = Reader(self.shm_dir)
        return self._reader.current()

    def generation(self) -> int:
        snap = self.snapshot()
        return snap.generation if snap is not None else 0

    def status(self) -> dict[str, Any] | None:
        return read_status(self.shm_dir)

    def wait_snapshot(
        self, pred: Callable[[Snapshot], bool], *, timeout: float = 30.0, what: str = ""
    ) -> Snapshot:
        def probe() -> Snapshot | None:
            snap = self.snapshot()
            return snap if snap is not None and pred(snap) else None

        try:
            return wait_until(probe, timeout=timeout, what=what)
        except AssertionError as exc:
            snap = self.snapshot()
            raise AssertionError(
                f"{exc}; last metadata {snap.metadata if snap else None}; "
                f"status {self.status()}; daemon log:\n{self.daemon.tail()}"
            ) from None

    def wait_status(
        self, pred: Callable[[dict[str, Any]], bool], *, timeout: float = 30.0, what: str = ""
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status()
            return status if status is not None and pred(status) else None

        try:
            return wait_until(probe, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; last status {self.status()}; daemon log:\n{self.daemon.tail()}"
            ) from None

    # -- HTTP ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self.web is not None
        port: int = self.web.port
        return port

    def get(self, path: str) -> _http.Result:
        return _http.call(self.port, "GET", path)

    def predict(self) -> _http.Result:
        return _http.call(self.port, "POST", "/predict", b"{}")

    def post(self, path: str, body: bytes) -> _http.Result:
        return _http.call(self.port, "POST", path, body)

    def wait_ready(self, timeout: float = 60.0) -> None:
        try:
            wait_until(
                lambda: self.get("/readyz").status == 200, timeout=timeout, what="/readyz 200"
            )
        except AssertionError as exc:
            reply = self.get("/readyz")
            raise AssertionError(
                f"{exc}: {reply.status} {reply.body[:300]!r}; status {self.status()}; "
                f"daemon log:\n{self.daemon.tail()}"
            ) from None

    def metrics(self) -> dict[str, float]:
        """``/metrics`` as ``{'name{label="v",...}': value}``."""
        reply = self.get("/metrics")
        assert reply.kind == "ok" and reply.status == 200, reply
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(reply.body.decode()):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return out

    def start_web(self, workers: int, **env: str) -> GunicornServer:
        web = GunicornServer(
            {"SHM_DIR": str(self.shm_dir), "MAX_DATA_AGE_MS": str(self.max_age_ms), **env},
            workers=workers,
        )
        self.web = web
        web.wait_ready()
        return web

    def access_lines(self, path: str) -> int:
        """Requests to ``path`` in Gunicorn's access log (needs ``WEB_ACCESS_LOG=-``)."""
        assert self.web is not None
        count = 0
        for line in self.web.log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"event": "access"' in line:
                entry = json.loads(line)
                count += entry.get("path") == path
        return count

    def error_lines(self, limit: int = 20) -> list[str]:
        """Gunicorn's own account of failures (tracebacks, ERROR lines, 5xx access lines),
        for failure messages: the log is deleted with the service."""
        assert self.web is not None
        lines = self.web.log.read_text(errors="replace").splitlines()
        marks = ("Traceback", '"level": "ERROR"', '"status": 5')
        return [line for line in lines if any(mark in line for mark in marks)][-limit:]

    def worker_pids(self) -> set[int]:
        assert self.web is not None
        return self.web.worker_pids()


@contextmanager
def running_service(
    artifact: bytes,
    *,
    stack: StackHandle | None = None,
    topic: str | None = None,
    workers: int = 4,
    snapshot_rows: int = 1000,
    model_in_s3: bool = False,
    s3_endpoint: str | None = None,
    shm_dir: Path | None = None,
    max_age_ms: int = 2000,
    publish_interval_ms: int = 5,
    wait_model: bool = True,
    daemon_env: Mapping[str, str] | None = None,
    web_env: Mapping[str, str] | None = None,
    layout: str = "auto",
) -> Iterator[Service]:
    """Start the daemon and Gunicorn; stop both and remove every file on exit.

    With ``stack`` and ``topic`` the daemon reads the topic, bootstraps from an S3 snapshot of
    ``snapshot_rows`` events (see ``_series``) and, with ``model_in_s3``, takes its model from
    the same bucket; ``s3_endpoint`` replaces the stack's (a gate in front of it). Without a
    stack it replays the sample. ``wait_model``: wait until a generation names the model and
    ``/readyz`` answers 200 before yielding. ``web_env``: more variables for Gunicorn.
    ``layout``: the daemon's ``PUBLISH_LAYOUT`` (``segmented`` publishes even the one series
    of these scenarios as a manifest and segment files).
    """
    work = Path(tempfile.mkdtemp(prefix="concurrency-", dir="/dev/shm"))
    directory = shm_dir if shm_dir is not None else work / "window"
    env = clean_env(
        SHM_DIR=str(directory),
        MAX_DATA_AGE_MS=str(max_age_ms),
        PUBLISH_INTERVAL_MS=str(publish_interval_ms),
        MODEL_POLL_INTERVAL_S="1",
        LOG_LEVEL="INFO",
        PUBLISH_LAYOUT=layout,
    )
    bucket = None
    digest = hashlib.sha256(artifact).hexdigest()
    if stack is not None and topic is not None:
        env.update(stack.env(KAFKA_TOPIC=topic, DAEMON_SOURCE="kafka"))
        bucket = stack.new_bucket(prefix="conc")
        client = stack.minio()
        objects: dict[str, bytes] = {}
        if snapshot_rows:
            objects["snapshot.parquet"] = snapshot_bytes(snapshot_rows, topic=topic)
            env.update(SNAPSHOT_BUCKET=bucket, SNAPSHOT_KEY="snapshot.parquet")
        if model_in_s3:
            objects["model.skops"] = artifact
            objects["model.skops.sha256"] = f"{digest}  model.skops\n".encode()
            env.update(MODEL_BUCKET=bucket, MODEL_KEY="model.skops")
        for key, data in objects.items():
            client.put_object(
                bucket_name=bucket, object_name=key, data=io.BytesIO(data), length=len(data)
            )
        if s3_endpoint is not None:
            env["S3_ENDPOINT"] = s3_endpoint
    else:
        env.update(DAEMON_SOURCE="replay")
    if not model_in_s3:
        model = work / "model.skops"
        model.write_bytes(artifact)
        model.with_name("model.skops.sha256").write_text(f"{digest}  model.skops\n")
        env["MODEL_PATH"] = str(model)
    env.update(daemon_env or {})
    daemon = Daemon(env, work / "daemon.log")
    service = Service(
        work=work,
        shm_dir=directory,
        daemon=daemon,
        max_age_ms=max_age_ms,
        topic=topic,
        bucket=bucket,
    )
    try:
        daemon.start()
        if wait_model:
            service.wait_snapshot(
                lambda s: bool(s.metadata.get("model_file")), timeout=60, what="a model"
            )
        if workers:
            service.start_web(workers, **(web_env or {}))
            if wait_model:
                service.wait_ready()
        yield service
    finally:
        try:
            if service.web is not None:
                service.web.stop()
        finally:
            daemon.close()
            service._reader = None  # unmaps (a tmpfs under test can then be unmounted)
            shutil.rmtree(work, ignore_errors=True)
