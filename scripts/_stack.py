"""``Stack``: start, probe and stop the local Kafka and S3 servers (see ``scripts.stack``)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from minio import Minio

from scripts import _cds, _jvm, _kafka_broker, _proc, _s3proxy, _stack_jars
from scripts._stack_config import ROOT, ServiceStatus, StackConfig
from scripts._stack_state import ServerRecord, StackState
from scripts.errors import StackError, StackStartError

__all__ = ["Stack"]

log = logging.getLogger(__name__)

INFRA = ROOT / "infra"
_SERVERS = ("s3", "kafka")


class Stack:
    """The local Kafka and S3 servers described by a ``StackConfig``.

    ``tie_to_parent=True`` makes the servers die with the process that started them (tests;
    start them from the main thread); the CLI leaves them running until ``down``. Not
    thread-safe; ``up``/``down``/``stop_kafka``/``start_kafka`` hold a file lock on the stack
    directory, so two processes never start the same stack twice.
    """

    def __init__(self, config: StackConfig, *, tie_to_parent: bool = False) -> None:
        self.config = config
        self._tie = tie_to_parent
        self._kafka = _kafka_broker.KafkaFiles(config.state_dir / "kafka")
        self._s3 = _s3proxy.S3Files(config.state_dir / "s3")
        self._markers = {"kafka": str(self._kafka.config), "s3": str(self._s3.config)}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._tools: tuple[str, list[str], _stack_jars.Jars] | None = None

    # -- addresses ---------------------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.config.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.config.s3_port}"

    @property
    def kafka_log(self) -> Path:
        return self._kafka.log_file

    @property
    def s3_log(self) -> Path:
        return self._s3.log_file

    def env(self) -> dict[str, str]:
        """The project's environment variables that point a process at this stack."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "S3_ENDPOINT": self.s3_endpoint,
            "S3_ACCESS_KEY": self.config.s3_access_key,
            "S3_SECRET_KEY": self.config.s3_secret_key,
            "S3_SECURE": "false",
            "S3_REGION": self.config.s3_region,
        }

    def minio(self, *, timeout_s: float = 5.0, secret_key: str | None = None) -> Minio:
        """A ``minio`` client for this stack with short timeouts and no retries."""
        return _s3proxy.minio_client(
            endpoint=self.s3_endpoint,
            access_key=self.config.s3_access_key,
            secret_key=self.config.s3_secret_key if secret_key is None else secret_key,
            region=self.config.s3_region,
            timeout_s=timeout_s,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def up(self) -> dict[str, float]:
        """Start whatever is not running and wait until both servers answer.

        Idempotent. Returns seconds from the call until each server answered
        (``{"s3": ..., "kafka": ..., "total": ...}``; a first run includes the jar download).
        Raises ``MissingToolError`` when no usable JDK is found, ``StackError`` when a port is
        taken, ``StackStartError`` (with the end of the server's log) when a server exits or does
        not answer within ``start_timeout_s`` of its start.
        """
        started = time.monotonic()
        with self._locked():
            state = self._read()
            self._check_ports(state)
            for name in _SERVERS:
                if not self._running(name, state):
                    self._start(name, state)
            return self._wait_ready(state, started)

    def down(self) -> None:
        """Stop both servers (only the recorded pids) and delete their data and state."""
        with self._locked():
            state = self._read()
            for name in ("kafka", "s3"):
                self._stop(name, state)
            shutil.rmtree(self._kafka.data, ignore_errors=True)
            shutil.rmtree(self._s3.data, ignore_errors=True)
            self._state_path.unlink(missing_ok=True)

    def stop_kafka(self, *, hard: bool = False) -> None:
        """Stop the broker, keeping its data (SIGTERM and a clean shutdown, or SIGKILL)."""
        with self._locked():
            state = self._read()
            self._stop("kafka", state, hard=hard)
            state.write(self._state_path)
        _kafka_broker.wait_stopped_port(self.config.kafka_port)

    def start_kafka(self) -> float:
        """Start the broker again on the same ports and data; returns seconds until it answered."""
        started = time.monotonic()
        with self._locked():
            state = self._read()
            if not self._running("kafka", state):
                self._start("kafka", state)
            return self._wait_ready(state, started)["kafka"]

    def status(self) -> list[ServiceStatus]:
        """Whether each server runs (recorded pid alive) and answers."""
        state = self._read()
        kafka_pid = state.pid("kafka") if self._running("kafka", state) else None
        s3_pid = state.pid("s3") if self._running("s3", state) else None
        kafka_ready = kafka_pid is not None and _kafka_broker.is_ready(self.bootstrap_servers)
        s3_ready = s3_pid is not None and _s3proxy.is_ready(self.minio(), self.s3_endpoint)
        return [
            ServiceStatus("kafka", self.bootstrap_servers, kafka_pid, kafka_ready),
            ServiceStatus("s3", self.s3_endpoint, s3_pid, s3_ready),
        ]

    # -- internals ---------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.config.state_dir / "state.json"

    def _ports(self) -> dict[str, int]:
        return {
            "kafka": self.config.kafka_port,
            "kafka_controller": self.config.kafka_controller_port,
            "s3": self.config.s3_port,
        }

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.config.state_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read(self) -> StackState:
        return StackState.read(self._state_path)

    def _running(self, name: str, state: StackState) -> bool:
        pid = state.pid(name)
        proc = self._procs.get(name)
        if proc is not None and proc.pid == pid:
            # Our own child: poll() is exact, while /proc can show an empty command line for a
            # moment around exec.
            return proc.poll() is None
        return pid is not None and _proc.is_running(pid, self._markers[name])

    def _check_ports(self, state: StackState) -> None:
        running = {name for name in _SERVERS if self._running(name, state)}
        if running and state.ports and state.ports != self._ports():
            raise StackError(
                f"the stack in {self.config.state_dir} runs on ports {state.ports}, "
                f"not {self._ports()}; run `down` first"
            )
        checks = []
        if "kafka" not in running:
            checks += [
                ("STACK_KAFKA_PORT", self.config.kafka_port),
                ("STACK_KAFKA_CONTROLLER_PORT", self.config.kafka_controller_port),
            ]
        if "s3" not in running:
            checks.append(("STACK_S3_PORT", self.config.s3_port))
        for name, port in checks:
            if not _port_free(port):
                raise StackError(
                    f"127.0.0.1:{port} is in use by another process; "
                    f"stop it or choose another port with {name}"
                )

    def _java_and_jars(self) -> tuple[str, list[str], _stack_jars.Jars]:
        """The JDK's java (absolute path), its release-specific flags, and the jars."""
        if self._tools is None:
            java = _jvm.find_java(self.config.java_home)
            jars = _stack_jars.resolve_jars(
                lock=INFRA / "stack-jars.lock.json", cache_dir=self.config.cache_dir
            )
            self._tools = (java.path, _jvm.version_flags(java.major), jars)
        return self._tools

    def _start(self, name: str, state: StackState) -> None:
        java, version_flags, jars = self._java_and_jars()
        archive = _cds.ClassArchive(
            self.config.cache_dir / "stack" / "cds", name, java=java, jars_key=jars.key
        )
        cds_flags, part = archive.flags()
        flags = [*version_flags, *cds_flags]
        if name == "kafka":
            log4j = INFRA / "kafka-log4j2.xml"
            _kafka_broker.write_config(
                self._kafka,
                template=INFRA / "kafka-server.properties",
                port=self.config.kafka_port,
                controller_port=self.config.kafka_controller_port,
            )
            _kafka_broker.format_storage(
                java=java,
                classpath=jars.kafka_classpath,
                files=self._kafka,
                log4j_config=log4j,
                extra=version_flags if part else flags,
            )
            cmd = _kafka_broker.command(
                java=java,
                classpath=jars.kafka_classpath,
                files=self._kafka,
                log4j_config=log4j,
                extra=flags,
            )
            log_path, home = self._kafka.stdout, self._kafka.home
        else:
            _s3proxy.write_config(
                self._s3,
                template=INFRA / "s3proxy.conf",
                port=self.config.s3_port,
                access_key=self.config.s3_access_key,
                secret_key=self.config.s3_secret_key,
            )
            cmd = _s3proxy.command(java=java, jar=jars.s3proxy_jar, files=self._s3, extra=flags)
            log_path, home = self._s3.log_file, self._s3.home
        proc = _proc.spawn(cmd, log_path=log_path, cwd=home, tie_to_parent=self._tie)
        self._procs[name] = proc
        state.servers[name] = ServerRecord(
            pid=proc.pid,
            cds_part=None if part is None else str(part),
            cds_archive=None if part is None else str(archive.path),
        )
        state.ports = self._ports()
        state.write(self._state_path)
        suffix = ", writes its class archive at exit" if part else ""
        log.info("%s starting (pid %d%s)", name, proc.pid, suffix)

    def _stop(self, name: str, state: StackState, *, hard: bool = False) -> None:
        record = state.servers.pop(name, None)
        proc = self._procs.pop(name, None)
        if record is None:
            return
        clean = _proc.stop(record.pid, self._markers[name], proc=proc, hard=hard)
        log.info("%s stopped (pid %d)", name, record.pid)
        if record.cds_archive is not None:
            part = Path(record.cds_part) if record.cds_part and clean else None
            _cds.adopt(part, Path(record.cds_archive))
            if record.cds_part and not clean:
                Path(record.cds_part).unlink(missing_ok=True)

    def _wait_ready(self, state: StackState, started: float) -> dict[str, float]:
        # The timeout counts from the spawn, so a first run's jar download does not eat it.
        deadline = time.monotonic() + self.config.start_timeout_s
        times: dict[str, float] = {}
        client = self.minio(timeout_s=2.0)
        probes: dict[str, Callable[[], bool]] = {
            "s3": lambda: _s3proxy.is_ready(client, self.s3_endpoint),
            "kafka": lambda: _kafka_broker.is_ready(self.bootstrap_servers),
        }
        logs = {"s3": [self._s3.log_file], "kafka": [self._kafka.log_file, self._kafka.stdout]}
        while len(times) < len(probes):
            for name, probe in probes.items():
                if name in times:
                    continue
                if not self._running(name, state):
                    raise _died(name, *logs[name])
                if probe():
                    times[name] = time.monotonic() - started
            if len(times) < len(probes):
                if time.monotonic() > deadline:
                    missing = ", ".join(sorted(probes.keys() - times.keys()))
                    raise StackStartError(
                        f"{missing} did not answer within {self.config.start_timeout_s:g} s; "
                        f"logs: {self._kafka.log_file}, {self._s3.log_file}"
                    )
                time.sleep(0.1)
        times["total"] = time.monotonic() - started
        return times


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _died(name: str, *logs: Path) -> StackStartError:
    tails = []
    for path in logs:
        with contextlib.suppress(OSError):
            lines = path.read_text(errors="replace").splitlines()[-20:]
            tails.append(f"--- {path} (last lines)\n" + "\n".join(lines))
    return StackStartError(f"{name} exited during start-up\n" + "\n".join(tails))
