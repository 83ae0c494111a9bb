"""``python -m forecasting.train`` reading the series from S3 and writing the artifact back
(real S3-compatible server from the session stack)."""

from __future__ import annotations

import io

from forecasting import load_bytes, sha256_hex
from forecasting.train import main
from tests.forecasting.conftest import SAMPLE


def test_train_reads_and_writes_s3(stack, s3_bucket, monkeypatch, capsys):
    for name, value in stack.env().items():
        monkeypatch.setenv(name, value)
    client = stack.minio()
    raw = SAMPLE.read_bytes()
    client.put_object(
        bucket_name=s3_bucket, object_name="series.parquet", data=io.BytesIO(raw), length=len(raw)
    )
    code = main(
        [
            "--input",
            f"s3://{s3_bucket}/series.parquet",
            "--output",
            f"s3://{s3_bucket}/models/model.skops",
            "--models",
            "ridge",
        ]
    )
    assert code == 0, capsys.readouterr().err

    def fetch(key: str) -> bytes:
        resp = client.get_object(bucket_name=s3_bucket, object_name=key)
        try:
            return bytes(resp.read())
        finally:
            resp.close()
            resp.release_conn()

    artifact = fetch("models/model.skops")
    digest = fetch("models/model.skops.sha256").decode().split()[0]
    assert digest == sha256_hex(artifact)
    assert load_bytes(artifact, sha256=digest).target == "demand_mw"
    assert "seasonal_naive" in capsys.readouterr().out
