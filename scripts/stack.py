"""The local stack: Apache Kafka (KRaft, one node) and s3proxy on 127.0.0.1.

Command line (from the project root; ``scripts/stack`` is the same with the project's venv)::

    python -m scripts.stack up       # start what is not running, wait until both answer,
                                     # print `export KAFKA_BOOTSTRAP_SERVERS=...` lines
    python -m scripts.stack status   # one line per server; exit 0 only when both answer
    python -m scripts.stack env      # the `export` lines again
    python -m scripts.stack down     # stop the servers this stack started, delete their data

Files: jars in ``<cache>/stack/lib`` (``.cache/`` by default, resolved by Maven from
``infra/pom.xml`` on first use), state, configs, data and logs in the stack directory
(``.run/stack/`` by default): ``state.json`` (pids and ports), ``kafka/logs/kafka.log``,
``s3/s3proxy.log``. ``down`` signals only the pids recorded there, and only when the process's
command line still names this directory.

Library use (the pytest fixtures in ``tests/conftest.py``)::

    stack = Stack(StackConfig.from_env(os.environ, state_dir=tmp, kafka_port=..., ...),
                  tie_to_parent=True)
    stack.up(); ...; stack.stop_kafka(); stack.start_kafka(); ...; stack.down()

A ``Stack`` object is not thread-safe; ``up``/``down``/``stop_kafka``/``start_kafka`` take a file
lock on the stack directory, so two processes never start the same stack twice.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio

from scripts import _jvm, _kafka, _proc, _s3proxy
from scripts.errors import StackError, StackStartError

__all__ = ["ServiceStatus", "Stack", "StackConfig", "main"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"

_PORT_VARS = ("STACK_KAFKA_PORT", "STACK_KAFKA_CONTROLLER_PORT", "STACK_S3_PORT")


@dataclass(frozen=True)
class StackConfig:
    """Where the stack lives and which loopback ports and keys it uses.

    Environment variables (all optional): ``STACK_DIR`` (default ``<root>/.run/stack``),
    ``STACK_CACHE_DIR`` (default ``<root>/.cache``), ``STACK_KAFKA_PORT`` (19092),
    ``STACK_KAFKA_CONTROLLER_PORT`` (19093), ``STACK_S3_PORT`` (19000), ``STACK_S3_ACCESS_KEY``,
    ``STACK_S3_SECRET_KEY``, ``STACK_START_TIMEOUT_S`` (90), ``JAVA_HOME``.
    """

    state_dir: Path
    cache_dir: Path
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    s3_port: int = 19000
    s3_access_key: str = "stack-access-key"
    s3_secret_key: str = "stack-secret-key-0123456789"  # noqa: S105 - a loopback test server
    s3_region: str = "us-east-1"
    start_timeout_s: float = 90.0
    java_home: str | None = None

    def __post_init__(self) -> None:
        ports = (self.kafka_port, self.kafka_controller_port, self.s3_port)
        for name, port in zip(_PORT_VARS, ports, strict=True):
            if not 0 < port < 65536:
                raise StackError(f"{name}={port} is not a TCP port (1-65535)")
        if len(set(ports)) != len(ports):
            raise StackError(f"{', '.join(_PORT_VARS)} must differ, got {ports}")
        if len(self.s3_access_key) < 3 or len(self.s3_secret_key) < 8:
            raise StackError("STACK_S3_ACCESS_KEY needs 3+ and STACK_S3_SECRET_KEY 8+ characters")
        if self.start_timeout_s <= 0:
            raise StackError(f"STACK_START_TIMEOUT_S={self.start_timeout_s} must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> StackConfig:
        """Build the config from ``environ``; keyword ``overrides`` win (used by the fixtures).

        Raises ``StackError`` naming the variable when a value is not valid.
        """
        values: dict[str, Any] = {
            "state_dir": Path(environ.get("STACK_DIR") or ROOT / ".run" / "stack"),
            "cache_dir": Path(environ.get("STACK_CACHE_DIR") or ROOT / ".cache"),
            "java_home": environ.get("JAVA_HOME") or None,
        }
        for name, key in zip(
            _PORT_VARS, ("kafka_port", "kafka_controller_port", "s3_port"), strict=True
        ):
            if environ.get(name):
                values[key] = _parse(name, environ[name], int)
        if environ.get("STACK_START_TIMEOUT_S"):
            values["start_timeout_s"] = _parse(
                "STACK_START_TIMEOUT_S", environ["STACK_START_TIMEOUT_S"], float
            )
        for name, key in (
            ("STACK_S3_ACCESS_KEY", "s3_access_key"),
            ("STACK_S3_SECRET_KEY", "s3_secret_key"),
        ):
            if environ.get(name):
                values[key] = environ[name]
        values.update(overrides)
        return cls(**values)


def _parse(name: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise StackError(f"{name}={raw!r} is not a valid {kind.__name__}") from None


@dataclass(frozen=True)
class ServiceStatus:
    """One server as ``status`` sees it."""

    name: str
    address: str
    pid: int | None
    ready: bool


@dataclass
class _State:
    kafka_pid: int | None = None
    s3_pid: int | None = None
    ports: dict[str, int] = field(default_factory=dict)


class Stack:
    """Start, probe and stop the local Kafka and S3 servers described by a ``StackConfig``.

    ``tie_to_parent=True`` makes the servers die with the process that started them (tests);
    the CLI leaves them running until ``down``.
    """

    def __init__(self, config: StackConfig, *, tie_to_parent: bool = False) -> None:
        self.config = config
        self._tie = tie_to_parent
        self._kafka = _kafka.KafkaFiles(config.state_dir / "kafka")
        self._s3 = _s3proxy.S3Files(config.state_dir / "s3")
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._java: str | None = None
        self._jars: _jvm.Jars | None = None

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
        (``{"s3": ..., "kafka": ..., "total": ...}``). Raises ``MissingToolError`` when Java or
        Maven is missing, ``StackStartError`` (with the end of the server's log) when a server
        exits or does not answer within ``start_timeout_s``.
        """
        started = time.monotonic()
        with self._locked():
            state = self._read_state()
            self._check_ports(state)
            if not self._s3_running(state):
                self._start_s3(state)
            if not self._kafka_running(state):
                self._start_kafka(state)
            return self._wait_ready(state, started)

    def down(self) -> None:
        """Stop both servers (only the recorded pids) and delete their data and state."""
        with self._locked():
            state = self._read_state()
            self._stop("kafka", state.kafka_pid, self._kafka_marker)
            self._stop("s3", state.s3_pid, self._s3_marker)
            shutil.rmtree(self._kafka.data, ignore_errors=True)
            shutil.rmtree(self._s3.data, ignore_errors=True)
            self._state_path.unlink(missing_ok=True)

    def stop_kafka(self, *, hard: bool = False) -> None:
        """Stop the broker, keeping its data (SIGTERM and a clean shutdown, or SIGKILL)."""
        with self._locked():
            state = self._read_state()
            self._stop("kafka", state.kafka_pid, self._kafka_marker, hard=hard)
            state.kafka_pid = None
            self._write_state(state)
        _kafka.wait_stopped_port(self.config.kafka_port)

    def start_kafka(self) -> float:
        """Start the broker again on the same ports and data; returns seconds until it answered."""
        started = time.monotonic()
        with self._locked():
            state = self._read_state()
            if not self._kafka_running(state):
                self._start_kafka(state)
            return self._wait_ready(state, started)["kafka"]

    def status(self) -> list[ServiceStatus]:
        """Whether each server runs (recorded pid alive) and answers."""
        state = self._read_state()
        kafka_pid = state.kafka_pid if self._kafka_running(state) else None
        s3_pid = state.s3_pid if self._s3_running(state) else None
        return [
            ServiceStatus(
                "kafka",
                self.bootstrap_servers,
                kafka_pid,
                kafka_pid is not None and _kafka.is_ready(self.bootstrap_servers),
            ),
            ServiceStatus(
                "s3",
                self.s3_endpoint,
                s3_pid,
                s3_pid is not None and _s3proxy.is_ready(self.minio(), self.s3_endpoint),
            ),
        ]

    # -- internals ---------------------------------------------------------------------------
    @property
    def _state_path(self) -> Path:
        return self.config.state_dir / "state.json"

    @property
    def _kafka_marker(self) -> str:
        return str(self._kafka.config)

    @property
    def _s3_marker(self) -> str:
        return str(self._s3.config)

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

    def _read_state(self) -> _State:
        try:
            raw = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return _State()
        except (OSError, ValueError) as exc:
            raise StackError(f"{self._state_path} is unreadable ({exc}); remove it") from None
        return _State(raw.get("kafka_pid"), raw.get("s3_pid"), dict(raw.get("ports") or {}))

    def _write_state(self, state: _State) -> None:
        tmp = self._state_path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"kafka_pid": state.kafka_pid, "s3_pid": state.s3_pid, "ports": state.ports},
                indent=2,
            )
        )
        os.replace(tmp, self._state_path)

    def _kafka_running(self, state: _State) -> bool:
        return self._alive("kafka", state.kafka_pid, self._kafka_marker)

    def _s3_running(self, state: _State) -> bool:
        return self._alive("s3", state.s3_pid, self._s3_marker)

    def _alive(self, name: str, pid: int | None, marker: str) -> bool:
        proc = self._procs.get(name)
        if proc is not None and proc.pid == pid:
            # Our own child: poll() is exact, while /proc can show an empty command line for a
            # moment around exec.
            return proc.poll() is None
        return pid is not None and _proc.is_running(pid, marker)

    def _check_ports(self, state: _State) -> None:
        running = self._kafka_running(state) or self._s3_running(state)
        if running and state.ports and state.ports != self._ports():
            raise StackError(
                f"the stack in {self.config.state_dir} runs on ports {state.ports}, "
                f"not {self._ports()}; run `down` first"
            )
        checks = []
        if not self._kafka_running(state):
            checks += [
                ("STACK_KAFKA_PORT", self.config.kafka_port),
                ("STACK_KAFKA_CONTROLLER_PORT", self.config.kafka_controller_port),
            ]
        if not self._s3_running(state):
            checks.append(("STACK_S3_PORT", self.config.s3_port))
        for name, port in checks:
            if not _port_free(port):
                raise StackError(
                    f"127.0.0.1:{port} is in use by another process; "
                    f"stop it or choose another port with {name}"
                )

    def _tools(self) -> tuple[str, _jvm.Jars]:
        if self._java is None or self._jars is None:
            self._java = _jvm.find_java(self.config.java_home)
            self._jars = _jvm.resolve_jars(pom=INFRA / "pom.xml", cache_dir=self.config.cache_dir)
        return self._java, self._jars

    def _start_s3(self, state: _State) -> None:
        java, jars = self._tools()
        _s3proxy.write_config(
            self._s3,
            template=INFRA / "s3proxy.conf",
            port=self.config.s3_port,
            access_key=self.config.s3_access_key,
            secret_key=self.config.s3_secret_key,
        )
        cmd = _s3proxy.command(java=java, jar=jars.s3proxy_jar, files=self._s3)
        proc = _proc.spawn(
            cmd, log_path=self._s3.log_file, cwd=self._s3.home, tie_to_parent=self._tie
        )
        self._procs["s3"] = proc
        state.s3_pid, state.ports = proc.pid, self._ports()
        self._write_state(state)
        log.info("s3proxy starting (pid %d) on %s", proc.pid, self.s3_endpoint)

    def _start_kafka(self, state: _State) -> None:
        java, jars = self._tools()
        log4j = INFRA / "kafka-log4j2.xml"
        _kafka.write_config(
            self._kafka,
            template=INFRA / "kafka-server.properties",
            port=self.config.kafka_port,
            controller_port=self.config.kafka_controller_port,
        )
        _kafka.format_storage(
            java=java, classpath=jars.kafka_classpath, files=self._kafka, log4j_config=log4j
        )
        cmd = _kafka.command(
            java=java, classpath=jars.kafka_classpath, files=self._kafka, log4j_config=log4j
        )
        proc = _proc.spawn(
            cmd, log_path=self._kafka.stdout, cwd=self._kafka.home, tie_to_parent=self._tie
        )
        self._procs["kafka"] = proc
        state.kafka_pid, state.ports = proc.pid, self._ports()
        self._write_state(state)
        log.info("kafka starting (pid %d) on %s", proc.pid, self.bootstrap_servers)

    def _wait_ready(self, state: _State, started: float) -> dict[str, float]:
        deadline = started + self.config.start_timeout_s
        times: dict[str, float] = {}
        client = self.minio(timeout_s=2.0)
        while len(times) < 2:
            if "s3" not in times:
                if not self._s3_running(state):
                    raise _died("s3proxy", self._s3.log_file)
                if _s3proxy.is_ready(client, self.s3_endpoint):
                    times["s3"] = time.monotonic() - started
            if "kafka" not in times:
                if not self._kafka_running(state):
                    raise _died("kafka", self._kafka.log_file, self._kafka.stdout)
                if _kafka.is_ready(self.bootstrap_servers):
                    times["kafka"] = time.monotonic() - started
            if len(times) < 2:
                if time.monotonic() > deadline:
                    missing = sorted({"s3", "kafka"} - times.keys())
                    raise StackStartError(
                        f"{', '.join(missing)} did not answer within "
                        f"{self.config.start_timeout_s:g} s; logs: {self._kafka.log_file}, "
                        f"{self._s3.log_file}"
                    )
                time.sleep(0.1)
        times["total"] = time.monotonic() - started
        return times

    def _stop(self, name: str, pid: int | None, marker: str, *, hard: bool = False) -> None:
        proc = self._procs.pop(name, None)
        if pid is not None:
            _proc.stop(pid, marker, proc=proc, hard=hard)
            log.info("%s stopped (pid %d)", name, pid)


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


def _exports(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {key}={shlex.quote(value)}" for key, value in env.items())


def main(argv: list[str] | None = None) -> int:
    """``python -m scripts.stack up|down|status|env``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.stack", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="stack: %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # probe retries are expected noise
    try:
        stack = Stack(StackConfig.from_env(os.environ))
        if args.command == "up":
            times = stack.up()
            log.info(
                "ready: s3 %.1f s, kafka %.1f s, total %.1f s",
                times["s3"],
                times["kafka"],
                times["total"],
            )
            print(_exports(stack.env()))
        elif args.command == "down":
            stack.down()
        elif args.command == "env":
            print(_exports(stack.env()))
        else:
            statuses = stack.status()
            for item in statuses:
                what = (
                    "ready" if item.ready else ("running, not answering" if item.pid else "stopped")
                )
                print(f"{item.name:6} {item.address:16} pid {item.pid or '-':>8}  {what}")
            return 0 if all(item.ready for item in statuses) else 1
    except StackError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
