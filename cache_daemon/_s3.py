"""The daemon's only contact with the object store (the only module that imports minio).

Every call is bounded: short connect/read timeouts and few retries, so an unreachable store
costs seconds, never a hang. Every failure becomes a :class:`~cache_daemon.errors.StoreError`
(``missing=True`` for a missing bucket or key).
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from cache_daemon.config import S3Config
from cache_daemon.errors import StoreError

__all__ = ["ObjectData", "ObjectStat", "ObjectStore"]

_MISSING = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "NoSuchVersion"})
_META_PREFIX = "x-amz-meta-"


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


class ObjectStore:
    """Thin, bounded wrapper over a minio client. Thread-safe (urllib3 pool)."""

    def __init__(self, config: S3Config, *, timeout_s: float = 5.0) -> None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout_s, 2.0), read=timeout_s),
            retries=urllib3.Retry(
                total=1, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)
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
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
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
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
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

    def _error(self, op: str, bucket: str, key: str, exc: BaseException) -> StoreError:
        where = f"s3://{bucket}/{key} at {self._endpoint}"
        if isinstance(exc, S3Error):
            return StoreError(
                f"{op} {where}: {exc.code}: {exc.message}", missing=exc.code in _MISSING
            )
        return StoreError(f"{op} {where}: {type(exc).__name__}: {exc}")
