"""Minimal S3 access for the training command (the only module importing minio here)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from minio import Minio

from forecasting.errors import ForecastingError

__all__ = ["S3Settings", "get_object", "put_object"]


@dataclass(frozen=True, slots=True)
class S3Settings:
    endpoint: str
    access_key: str
    secret_key: str
    secure: bool
    region: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> S3Settings:
        """Read ``S3_ENDPOINT`` (host:port), keys, ``S3_SECURE`` and ``S3_REGION``."""
        endpoint = environ.get("S3_ENDPOINT", "")
        if not endpoint:
            raise ForecastingError("S3_ENDPOINT must be set (host:port) to use s3:// paths")
        secure_raw = environ.get("S3_SECURE", "false").strip().lower()
        if secure_raw not in {"true", "false", "1", "0", "yes", "no"}:
            raise ForecastingError(f"S3_SECURE must be true or false, got {secure_raw!r}")
        return cls(
            endpoint=endpoint,
            access_key=environ.get("S3_ACCESS_KEY", ""),
            secret_key=environ.get("S3_SECRET_KEY", ""),
            secure=secure_raw in {"true", "1", "yes"},
            region=environ.get("S3_REGION", "us-east-1"),
        )

    def client(self) -> Minio:
        return Minio(
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=self.secure,
            region=self.region,
        )


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    rest = url.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise ForecastingError(f"expected s3://bucket/key, got {url!r}")
    return bucket, key


def get_object(settings: S3Settings, url: str) -> bytes:
    bucket, key = split_url(url)
    response = settings.client().get_object(bucket_name=bucket, object_name=key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def put_object(settings: S3Settings, url: str, data: bytes) -> None:
    bucket, key = split_url(url)
    settings.client().put_object(
        bucket_name=bucket,
        object_name=key,
        data=io.BytesIO(data),
        length=len(data),
        content_type="application/octet-stream",
    )
