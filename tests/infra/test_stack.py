"""scripts.stack: configuration errors, missing tools, busy ports, and the CLI's lifecycle
(idempotent ``up``, ``status``, ``env``, ``down`` that stops only its own servers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import _jvm
from scripts.errors import MissingToolError, StackError
from scripts.stack import ROOT, Stack, StackConfig
from tests._stack import StackHandle, free_ports


def test_config_defaults_and_overrides(tmp_path: Path) -> None:
    config = StackConfig.from_env({})
    assert config.state_dir == ROOT / ".run" / "stack"
    assert (config.kafka_port, config.s3_port) == (19092, 19000)
    config = StackConfig.from_env(
        {"STACK_DIR": str(tmp_path), "STACK_KAFKA_PORT": "29092", "STACK_S3_PORT": "29000"}
    )
    assert (config.state_dir, config.kafka_port, config.s3_port) == (tmp_path, 29092, 29000)
    stack = Stack(config)
    assert stack.env() == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:29092",
        "S3_ENDPOINT": "127.0.0.1:29000",
        "S3_ACCESS_KEY": config.s3_access_key,
        "S3_SECRET_KEY": config.s3_secret_key,
        "S3_SECURE": "false",
        "S3_REGION": "us-east-1",
    }


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"STACK_KAFKA_PORT": "kafka"}, "STACK_KAFKA_PORT"),
        ({"STACK_S3_PORT": "70000"}, "STACK_S3_PORT"),
        ({"STACK_S3_PORT": "19092"}, "STACK_KAFKA_PORT"),
        ({"STACK_START_TIMEOUT_S": "-1"}, "STACK_START_TIMEOUT_S"),
        ({"STACK_S3_SECRET_KEY": "short"}, "STACK_S3_SECRET_KEY"),
    ],
)
def test_bad_config_names_the_variable(environ: dict[str, str], named: str) -> None:
    with pytest.raises(StackError, match=named):
        StackConfig.from_env(environ)


def fake_java(home: Path, version: str) -> Path:
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    return java


def test_the_bundled_jdk_runs_the_stack_by_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, javac or mvn anywhere
    java = _jvm.find_java(None)
    assert java.path == str(_jvm.bundled_java())
    assert Path(java.path).is_absolute()
    assert java.major >= _jvm.JAVA_MIN_MAJOR


def test_a_usable_java_home_is_preferred(tmp_path: Path) -> None:
    java = fake_java(tmp_path / "jdk21", "21.0.2")
    assert _jvm.find_java(str(tmp_path / "jdk21")) == _jvm.Java(str(java), 21)


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (None, "bin/java does not exist"),
        ("11.0.2", "bin/java is Java 11, Java 17+ is needed"),
        ("1.8.0_392", "bin/java is Java 8, Java 17+ is needed"),
    ],
)
def test_an_unusable_java_home_falls_back_to_the_bundled_jdk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, version: str | None, reason: str
) -> None:
    if version is not None:
        fake_java(tmp_path / "jdk", version)
    found = _jvm.find_java(str(tmp_path / "jdk"))
    assert found.path == str(_jvm.bundled_java())
    assert f"JAVA_HOME={tmp_path / 'jdk'} is not used: " in caplog.text
    assert reason in caplog.text


def test_no_usable_jdk_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(MissingToolError, match=r"bundled JDK is not usable.*make venv.*JAVA_HOME"):
        _jvm.find_java(None, bundled=tmp_path / "no-jdk" / "bin" / "java")
    broken = tmp_path / "broken" / "bin" / "java"
    broken.parent.mkdir(parents=True)
    broken.write_text("#!/bin/sh\necho 'cannot run' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(MissingToolError, match=r"-version` failed.*cannot run"):
        _jvm.find_java(None, bundled=broken)


def test_regenerating_the_lock_without_maven_says_what_to_install(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.stack_lock", "--lock", str(tmp_path / "lock.json")],
        cwd=ROOT,
        env={**os.environ, "PATH": str(tmp_path), "STACK_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "`mvn` is not on PATH: regenerating the lock needs Apache Maven" in done.stderr
    assert not (tmp_path / "lock.json").exists()


def test_a_busy_port_is_reported_before_anything_starts(tmp_path: Path) -> None:
    kafka_port, controller_port, s3_port = free_ports(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", s3_port))
        busy.listen()
        config = StackConfig.from_env(
            {},
            state_dir=tmp_path,
            kafka_port=kafka_port,
            kafka_controller_port=controller_port,
            s3_port=s3_port,
        )
        with pytest.raises(StackError, match=f"127.0.0.1:{s3_port} is in use.*STACK_S3_PORT"):
            Stack(config).up()
    assert not (tmp_path / "state.json").exists()


def run_cli(command: str, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.stack", command],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.integration
def test_cli_up_is_idempotent_and_down_stops_only_its_own_servers(
    stack: StackHandle, tmp_path: Path
) -> None:
    kafka_port, controller_port, s3_port = free_ports(3)
    environ = {
        **os.environ,
        "STACK_DIR": str(tmp_path / "cli"),
        "STACK_KAFKA_PORT": str(kafka_port),
        "STACK_KAFKA_CONTROLLER_PORT": str(controller_port),
        "STACK_S3_PORT": str(s3_port),
    }
    first = run_cli("up", environ)
    assert first.returncode == 0, first.stderr
    assert f"export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{kafka_port}" in first.stdout
    assert f"export S3_ENDPOINT=127.0.0.1:{s3_port}" in first.stdout
    assert "ready:" in first.stderr
    state = (tmp_path / "cli" / "state.json").read_text()

    try:
        again = run_cli("up", environ)
        assert again.returncode == 0, again.stderr
        assert "starting" not in again.stderr  # nothing new was started
        assert (tmp_path / "cli" / "state.json").read_text() == state
        status = run_cli("status", environ)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("ready") == 2
        assert run_cli("env", environ).stdout == first.stdout
    finally:
        down = run_cli("down", environ)
    assert down.returncode == 0, down.stderr

    pids = {name: server["pid"] for name, server in json.loads(state)["servers"].items()}
    assert pids.keys() == {"kafka", "s3"}
    assert not any(pid_alive(pid) for pid in pids.values())
    stopped = run_cli("status", environ)
    assert stopped.returncode == 1
    assert stopped.stdout.count("stopped") == 2
    # The session's stack is untouched.
    assert stack.minio().bucket_exists(bucket_name="never-created-bucket") is False
    assert stack.new_topic(1)
