"""The ``minio`` client against the stack's S3 server: round-trip, presigned URLs, and a clear
and quick error for a missing bucket, a missing key, wrong credentials and no server."""

from __future__ import annotations

import io
import time

import pytest
import urllib3
from minio.error import S3Error

from scripts._s3proxy import minio_client
from tests._stack import StackHandle, free_ports


def test_round_trip_put_get_stat_list(stack: StackHandle, s3_bucket: str) -> None:
    client = stack.minio()
    assert client.bucket_exists(bucket_name=s3_bucket)
    payload = b"time,demand_mw\n2000-06-05T00:00:00Z,5000.5\n"
    client.put_object(
        bucket_name=s3_bucket,
        object_name="snapshots/a.csv",
        data=io.BytesIO(payload),
        length=len(payload),
        content_type="text/csv",
    )
    client.put_object(bucket_name=s3_bucket, object_name="top.txt", data=io.BytesIO(b"x"), length=1)

    response = client.get_object(bucket_name=s3_bucket, object_name="snapshots/a.csv")
    try:
        assert response.read() == payload
    finally:
        response.close()
        response.release_conn()
    stat = client.stat_object(bucket_name=s3_bucket, object_name="snapshots/a.csv")
    assert stat.size == len(payload)
    assert stat.content_type == "text/csv"

    listed = client.list_objects(bucket_name=s3_bucket, recursive=True)
    assert sorted(o.object_name for o in listed) == ["snapshots/a.csv", "top.txt"]
    under = client.list_objects(bucket_name=s3_bucket, prefix="snapshots/")
    assert [o.object_name for o in under] == ["snapshots/a.csv"]


def test_presigned_urls_work_without_credentials(stack: StackHandle, s3_bucket: str) -> None:
    client = stack.minio()
    http = urllib3.PoolManager(timeout=5.0, retries=False)
    put_url = client.presigned_put_object(bucket_name=s3_bucket, object_name="up.bin")
    assert http.request("PUT", put_url, body=b"\x00\x01\x02").status == 200
    get_url = client.presigned_get_object(bucket_name=s3_bucket, object_name="up.bin")
    response = http.request("GET", get_url)
    assert response.status == 200
    assert response.data == b"\x00\x01\x02"
    assert http.request("GET", get_url.replace("up.bin", "other.bin")).status == 403


def test_missing_bucket_is_a_clear_error(stack: StackHandle) -> None:
    client = stack.minio()
    assert not client.bucket_exists(bucket_name="no-such-bucket-here")
    with pytest.raises(S3Error) as caught:
        client.get_object(bucket_name="no-such-bucket-here", object_name="x")
    assert caught.value.code == "NoSuchBucket"


def test_missing_key_is_a_clear_error(stack: StackHandle, s3_bucket: str) -> None:
    client = stack.minio()
    with pytest.raises(S3Error) as caught:
        client.get_object(bucket_name=s3_bucket, object_name="missing.parquet")
    assert caught.value.code == "NoSuchKey"
    with pytest.raises(S3Error) as stat_caught:
        client.stat_object(bucket_name=s3_bucket, object_name="missing.parquet")
    assert stat_caught.value.code == "NoSuchKey"


def test_wrong_credentials_fail_fast(stack: StackHandle, s3_bucket: str) -> None:
    started = time.monotonic()
    with pytest.raises(S3Error) as wrong_secret:
        stack.minio(secret_key="not-the-secret").list_objects(bucket_name=s3_bucket).__next__()
    assert wrong_secret.value.code == "SignatureDoesNotMatch"
    stranger = minio_client(
        endpoint=stack.s3_endpoint, access_key="nobody", secret_key=stack.s3_secret_key
    )
    with pytest.raises(S3Error) as wrong_key:
        stranger.bucket_exists(bucket_name=s3_bucket)
    assert wrong_key.value.code in {"InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch"}
    assert time.monotonic() - started < 5


def test_no_server_fails_fast() -> None:
    (port,) = free_ports(1)
    client = minio_client(
        endpoint=f"127.0.0.1:{port}", access_key="a-key", secret_key="a-secret", timeout_s=2.0
    )
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        client.bucket_exists(bucket_name="anything")
    assert time.monotonic() - started < 3
