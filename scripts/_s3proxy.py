"""The S3 server of the local stack: s3proxy with its filesystem backend.

Signature V4 (and V2) authentication with one access/secret key pair, objects stored as files
under ``<stack>/s3/data``; the server's own log goes to ``<stack>/s3/s3proxy.log``.
"""

from __future__ import annotations

import io
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from string import Template

import urllib3
from minio import Minio
from minio.error import MinioException

from scripts._jvm import jvm_flags

__all__ = ["S3Files", "command", "is_ready", "minio_client", "write_config"]

HEAP_MB = 256


@dataclass(frozen=True)
class S3Files:
    """Where one s3proxy keeps its files."""

    home: Path

    @property
    def config(self) -> Path:
        return self.home / "s3proxy.conf"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "s3proxy.log"


def write_config(
    files: S3Files, *, template: Path, port: int, access_key: str, secret_key: str
) -> None:
    """Render ``infra/s3proxy.conf`` into ``files.config`` (mode 0600: it holds the secret)."""
    text = Template(template.read_text()).substitute(
        port=port, access_key=access_key, secret_key=secret_key, data_dir=files.data
    )
    files.data.mkdir(parents=True, exist_ok=True)
    files.config.touch(mode=0o600)
    files.config.write_text(text)


def command(*, java: str, jar: Path, files: S3Files, extra: list[str]) -> list[str]:
    """The argv that runs s3proxy in the foreground (``extra``: more JVM flags)."""
    return [
        java,
        *jvm_flags(heap_mb=HEAP_MB),
        *extra,
        # s3proxy's logback reads LOG_LEVEL; a system property wins over the environment, so the
        # project's own LOG_LEVEL does not change the server's verbosity.
        "-DLOG_LEVEL=info",
        "-Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener",
        "-jar",
        str(jar),
        "--properties",
        str(files.config),
    ]


def minio_client(
    *,
    endpoint: str,
    access_key: str,
    secret_key: str,
    region: str = "us-east-1",
    timeout_s: float = 5.0,
) -> Minio:
    """A ``minio`` client with short timeouts and no retries, so a failure is quick and clear."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        retries=urllib3.Retry(total=0, redirect=0),
    )
    return Minio(
        endpoint=endpoint,
        access_key=access_key,
        secret_key=secret_key,
        secure=False,
        region=region,
        http_client=http,
    )


def is_ready(client: Minio, endpoint: str) -> bool:
    """True when a bucket round-trip works: create, put, get, delete object, delete bucket."""
    host, _, port = endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.5):
            pass
    except OSError:
        return False
    bucket = f"stack-probe-{secrets.token_hex(6)}"
    payload = b"ok"
    try:
        client.make_bucket(bucket_name=bucket)
        try:
            client.put_object(
                bucket_name=bucket, object_name="probe", data=io.BytesIO(payload), length=2
            )
            response = client.get_object(bucket_name=bucket, object_name="probe")
            try:
                body = response.read()
            finally:
                response.close()
                response.release_conn()
            client.remove_object(bucket_name=bucket, object_name="probe")
        finally:
            client.remove_bucket(bucket_name=bucket)
    except (MinioException, urllib3.exceptions.HTTPError, OSError):
        return False
    return body == payload
