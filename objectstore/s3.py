"""The bounded object store client (the only module that imports minio).

Every call is bounded: short connect/read timeouts and few retries, so an unreachable store
costs seconds, never a hang. Every failure becomes a :class:`~objectstore.errors.StoreError`
(``missing=True`` for a missing bucket or key) naming the operation, object and endpoint.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from objectstore.config import S3Config
from objectstore.errors import StoreError

__all__ = ["ObjectData", "ObjectStat", "ObjectStore", "split_url"]

_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "NoSuchVersion"})
_META_PREFIX = "x-amz-meta-"
# What the client raises besides S3Error: transport failures and malformed answers.
_FAILURES = (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError)


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """Identity of an object version: changes whenever the object is replaced."""

    etag: str
    version_id: str | None
    size: int


@dataclass(frozen=True, slots=True)
class ObjectData:
    """An object's bytes with the identity and user metadata of that same version."""

    data: bytes
    stat: ObjectStat
    metadata: dict[str, str]


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ``ValueError`` for anything else."""
    rest = url.removeprefix("s3://")
    bucket, _, key = rest.partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise ValueError(f"expected s3://bucket/key, got {url!r}")
    return bucket, key


class ObjectStore:
    """Thin, bounded wrapper over a minio client. Thread-safe (urllib3 pool).

    ``timeout_s`` bounds each read (connecting: at most 2 s of it); ``retries`` is how often
    a failed connection or a 5xx answer is tried again.
    """

    def __init__(self, config: S3Config, *, timeout_s: float = 5.0, retries: int = 1) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout_s, 2.0), read=timeout_s),
            retries=urllib3.Retry(
                total=retries, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
            ),
            maxsize=4,
            cert_reqs="CERT_REQUIRED",
        )
        self._endpoint = config.endpoint
        self._client = Minio(
            endpoint=config.endpoint,
            access_key=config.access_key,
            secret_key=config.secret_key,
            secure=config.secure,
            region=config.region,
            http_client=http,
        )

    def stat(self, bucket: str, key: str) -> ObjectStat:
        """The current version's identity."""
        try:
            obj = self._client.stat_object(bucket_name=bucket, object_name=key)
        except _FAILURES as exc:
            raise self._error("stat", bucket, key, exc) from None
        return ObjectStat(etag=obj.etag or "", version_id=obj.version_id, size=obj.size or 0)

    def get(self, bucket: str, key: str, *, max_bytes: int = 1 << 30) -> ObjectData:
        """Read a whole object (refusing ones larger than ``max_bytes``)."""
        response = None
        try:
            response = self._client.get_object(bucket_name=bucket, object_name=key)
            length = int(response.headers.get("content-length", "0") or 0)
            if length > max_bytes:
                raise StoreError(f"s3://{bucket}/{key} is {length} bytes (limit {max_bytes})")
            data = response.read()
            headers = response.headers
        except StoreError:
            raise
        except _FAILURES as exc:
            raise self._error("get", bucket, key, exc) from None
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        stat = ObjectStat(
            etag=(headers.get("etag") or "").strip('"'),
            version_id=headers.get("x-amz-version-id"),
            size=len(data),
        )
        metadata = {
            k.lower()[len(_META_PREFIX) :]: v
            for k, v in headers.items()
            if k.lower().startswith(_META_PREFIX)
        }
        return ObjectData(data=data, stat=stat, metadata=metadata)

    def put(
        self,
        bucket: str,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
    ) -> None:
        """Write ``data`` as the object's new version."""
        try:
            self._client.put_object(
                bucket_name=bucket,
                object_name=key,
                data=io.BytesIO(data),
                length=len(data),
                content_type=content_type,
            )
        except _FAILURES as exc:
            raise self._error("put", bucket, key, exc) from None

    def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        try:
            if not self._client.bucket_exists(bucket_name=bucket):
                self._client.make_bucket(bucket_name=bucket)
        except _FAILURES as exc:
            raise self._error("create bucket", bucket, "", exc) from None

    def _error(self, op: str, bucket: str, key: str, exc: BaseException) -> StoreError:
        where = f"s3://{bucket}/{key} at {self._endpoint}"
        if isinstance(exc, S3Error):
            return StoreError(
                f"{op} {where}: {exc.code}: {exc.message}", missing=exc.code in _MISSING
            )
        return StoreError(f"{op} {where}: {type(exc).__name__}: {exc}")
