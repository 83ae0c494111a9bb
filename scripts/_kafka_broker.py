"""The Apache Kafka broker of the local stack: config, storage format, command, readiness.

One node in KRaft combined mode (broker + controller) with a static single-voter quorum, both
listeners on 127.0.0.1. Files under its directory ``<stack>/kafka``: ``server.properties``,
``data/`` (formatted once, kept across a stop/start so a restart resumes the same log),
``logs/kafka.log`` (log4j2, see ``infra/kafka-log4j2.xml``) and ``logs/stdout.log``.
"""

from __future__ import annotations

import base64
import logging
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

from scripts._jvm import jvm_flags
from scripts.errors import StackError

__all__ = ["KafkaFiles", "command", "format_storage", "is_ready", "write_config"]

log = logging.getLogger(__name__)

HEAP_MB = 512


@dataclass(frozen=True)
class KafkaFiles:
    """Where one broker keeps its files."""

    home: Path

    @property
    def config(self) -> Path:
        return self.home / "server.properties"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs / "kafka.log"

    @property
    def stdout(self) -> Path:
        return self.logs / "stdout.log"


def write_config(files: KafkaFiles, *, template: Path, port: int, controller_port: int) -> None:
    """Render ``infra/kafka-server.properties`` for these ports into ``files.config``."""
    text = Template(template.read_text()).substitute(
        port=port, controller_port=controller_port, log_dir=files.data
    )
    files.logs.mkdir(parents=True, exist_ok=True)
    files.config.write_text(text)


def _java_base(
    java: str, classpath: str, files: KafkaFiles, log4j_config: Path, extra: list[str]
) -> list[str]:
    return [
        java,
        *jvm_flags(heap_mb=HEAP_MB),
        *extra,
        f"-Dkafka.logs.dir={files.logs}",
        f"-Dlog4j2.configurationFile={log4j_config}",
        "-cp",
        classpath,
    ]


def format_storage(
    *, java: str, classpath: str, files: KafkaFiles, log4j_config: Path, extra: list[str]
) -> None:
    """Format ``files.data`` for a new single-node cluster unless it is formatted already."""
    if (files.data / "meta.properties").is_file():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    cmd = [
        *_java_base(java, classpath, files, log4j_config, extra),
        "kafka.tools.StorageTool",
        "format",
        "--cluster-id",
        cluster_id,
        "--config",
        str(files.config),
        "--ignore-formatted",
    ]
    done = subprocess.run(  # noqa: S603 - argv list, no shell
        cmd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise StackError(
            f"formatting Kafka storage in {files.data} failed:\n"
            f"{(done.stdout + done.stderr).strip()[-2000:]}"
        )


def command(
    *, java: str, classpath: str, files: KafkaFiles, log4j_config: Path, extra: list[str]
) -> list[str]:
    """The argv that runs the broker in the foreground (``extra``: more JVM flags)."""
    return [
        *_java_base(java, classpath, files, log4j_config, extra),
        "kafka.Kafka",
        str(files.config),
    ]


def is_ready(bootstrap_servers: str) -> bool:
    """True when the broker answers a metadata request and reports itself unfenced.

    Opens a TCP connection first (cheap) and only then a kafka-python admin client with short
    timeouts, which it always closes.
    """
    host, _, port = bootstrap_servers.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    # Imported here: scripts.stack must import without kafka-python configured for logging.
    from kafka import KafkaAdminClient  # noqa: PLC0415
    from kafka.errors import KafkaConfigurationError, KafkaError  # noqa: PLC0415

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            client_id="stack-probe",
            request_timeout_ms=3000,
            bootstrap_timeout_ms=3000,
            reconnect_backoff_max_ms=200,
        )
    except KafkaConfigurationError:
        raise
    except (KafkaError, OSError):
        return False
    try:
        cluster = admin.describe_cluster()
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    return bool(brokers) and not any(b.get("is_fenced") for b in brokers)


def wait_stopped_port(port: int, timeout_s: float = 10.0) -> None:
    """Wait until nothing accepts connections on 127.0.0.1:``port`` (after a stop)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)
