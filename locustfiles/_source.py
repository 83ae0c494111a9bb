"""Reading the real series for ``real`` payloads: an S3 object, or a local parquet file.

Called once per load-generating process (the users share the result). The object or file is
a parquet table with a ``time`` column (timestamps; naive ones are UTC) and the value column,
such as the bundled sample or the daemon's snapshot.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from locustfiles._config import LoadConfig, S3Location
from locustfiles._series import Series
from locustfiles.errors import SeriesError

__all__ = ["fetch_s3_object", "load_series", "series_from_table"]

log = logging.getLogger(__name__)
_TIMEOUT_S = 10.0


def series_from_table(table: pa.Table, column: str, *, time_col: str = "time") -> Series:
    """A :class:`Series` from an Arrow table; :class:`SeriesError` names what is missing."""
    missing = [c for c in (time_col, column) if c not in table.column_names]
    if missing:
        raise SeriesError(f"the series lacks column(s) {missing}; it has {table.column_names}")
    times = table.column(time_col)
    if not pa.types.is_timestamp(times.type):
        raise SeriesError(f"column {time_col!r} is {times.type}, not a timestamp")
    if times.null_count:
        raise SeriesError(f"column {time_col!r} has {times.null_count} missing time(s)")
    # Naive timestamps are UTC by convention; aware ones are stored as UTC already.
    ns = pc.cast(times, pa.timestamp("ns", tz=times.type.tz)).cast(pa.int64())
    values = table.column(column)
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise SeriesError(f"column {column!r} is {values.type}, not numeric")
    return Series.from_arrays(
        np.asarray(ns.to_numpy(), dtype=np.int64),
        np.asarray(values.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64),
        column,
    )


def fetch_s3_object(location: S3Location) -> bytes:
    """The object's bytes (minio client, keyword arguments, short timeouts)."""
    # Imported here: minio pulls in urllib3/ssl, which must come after Locust's gevent patch.
    import urllib3  # noqa: PLC0415
    from minio import Minio  # noqa: PLC0415
    from minio.error import MinioException  # noqa: PLC0415

    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_TIMEOUT_S, read=_TIMEOUT_S),
        retries=urllib3.Retry(total=2, backoff_factor=0.2),
    )
    client = Minio(
        endpoint=location.endpoint,
        access_key=location.access_key,
        secret_key=location.secret_key,
        secure=location.secure,
        region=location.region,
        http_client=http,
    )
    response = None
    try:
        response = client.get_object(bucket_name=location.bucket, object_name=location.key)
        data: bytes = response.read()
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise SeriesError(
            f"cannot fetch s3://{location.bucket}/{location.key} from {location.endpoint}: {exc}"
        ) from None
    finally:
        if response is not None:
            response.close()
            response.release_conn()
        http.clear()
    return data


def load_series(config: LoadConfig) -> Series:
    """The configured series: from S3 when ``config.s3`` is set, else the local file."""
    try:
        if config.s3 is not None:
            where = f"s3://{config.s3.bucket}/{config.s3.key}"
            table = pq.read_table(pa.BufferReader(fetch_s3_object(config.s3)))
        else:
            where = str(config.series_path)
            table = pq.read_table(Path(config.series_path))
    except (OSError, pa.ArrowException) as exc:
        raise SeriesError(f"cannot read the series: {exc}") from None
    series = series_from_table(table, config.column)
    log.info(
        "real series loaded from %s: %d rows, step %g s, longest contiguous stretch %d rows",
        where,
        len(series.times_ns),
        series.step_ns / 1e9,
        series.longest_run,
    )
    return series
