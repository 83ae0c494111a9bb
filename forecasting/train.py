"""``python -m forecasting.train``: fit a forecaster, report holdout scores, write the artifact.

The input is a parquet file (local path or ``s3://bucket/key``, S3 settings from the
``S3_*`` variables) with a time column and a float target column. Naive times are taken as
UTC. The command fits on all but the holdout, prints MAE/MAPE next to seasonal-naive
baselines, then refits on the whole series and writes the artifact (local path or
``s3://``), printing its SHA-256. Exit status 2 on bad input.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from contract import defaults
from contract._atomic import write_atomic
from contract.errors import ConfigError
from forecasting.artifact import dumps, sha256_hex
from forecasting.errors import ForecastingError
from forecasting.evaluate import evaluate_holdout
from forecasting.features import FeatureSpec, FloatArray, IntArray, regularize
from forecasting.model import fit
from objectstore import ObjectStore, S3Config, split_url

__all__ = ["TrainReport", "load_series", "main", "train", "write_artifact"]

log = logging.getLogger(__name__)

TrainReport = dict[str, object]


def load_series(frame: pd.DataFrame, *, time_col: str, target: str) -> tuple[IntArray, FloatArray]:
    """Sorted, unique UTC nanosecond times and float64 values from a frame."""
    for col in (time_col, target):
        if col not in frame.columns:
            raise ForecastingError(f"column {col!r} not in input (has {list(frame.columns)})")
    times = pd.to_datetime(frame[time_col])
    times = times.dt.tz_localize("UTC") if times.dt.tz is None else times.dt.tz_convert("UTC")
    t = times.astype("datetime64[ns, UTC]").to_numpy(dtype="datetime64[ns]").astype(np.int64)
    v = pd.to_numeric(frame[target], errors="raise").to_numpy(dtype=np.float64)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    if len(t) > 1 and np.any(np.diff(t) == 0):
        raise ForecastingError("input has duplicate timestamps")
    if not np.all(np.isfinite(v)):
        raise ForecastingError(f"column {target!r} has NaN or infinite values")
    return t, v


def _infer_step(t: IntArray) -> int:
    if len(t) < 2:
        raise ForecastingError("input needs at least two rows")
    return int(np.median(np.diff(t)))


def train(
    frame: pd.DataFrame,
    *,
    time_col: str = "time",
    target: str = defaults.SERIES_COLUMN,
    max_lag: int = 336,
    horizon: int = 48,
    holdout_rows: int = 672,
    alpha: float = 1.0,
) -> tuple[bytes, TrainReport]:
    """Evaluate on a holdout, refit on everything, return ``(artifact bytes, report)``."""
    t, v = load_series(frame, time_col=time_col, target=target)
    step = _infer_step(t)
    t, v = regularize(t, v, step)
    spec = FeatureSpec(lags=tuple(range(1, max_lag + 1)), step_ns=step, horizon=horizon)
    _, scores = evaluate_holdout(t, v, spec, target=target, holdout_rows=holdout_rows, alpha=alpha)
    model = fit(t, v, spec, target=target, alpha=alpha)
    data = dumps(model)
    report: TrainReport = {
        "model_version": model.version,
        "sha256": sha256_hex(data),
        "rows": len(v),
        "step_s": step / 1e9,
        "min_rows": spec.min_rows,
        "horizon": spec.horizon,
        "holdout_rows": holdout_rows,
        "scores": {name: s.as_dict() for name, s in scores.items()},
    }
    return data, report


def _object_store() -> ObjectStore:
    """The store ``s3://`` paths refer to, from the ``S3_*`` variables."""
    try:
        config = S3Config.from_env(os.environ)
    except ConfigError as exc:
        raise ForecastingError(f"s3:// paths need the S3_* variables: {exc}") from None
    return ObjectStore(config, timeout_s=30.0, retries=2)


def _read_input(source: str) -> pd.DataFrame:
    if source.startswith("s3://"):
        raw = _object_store().get(*split_url(source)).data
        return pd.read_parquet(io.BytesIO(raw))
    return pd.read_parquet(source)


def write_artifact(dest: str, data: bytes) -> None:
    """Write the artifact and its ``.sha256`` sidecar (``sha256sum`` format), which the
    daemon requires before it installs an artifact."""
    sidecar = f"{sha256_hex(data)}  {dest.rsplit('/', 1)[-1]}\n".encode()
    if dest.startswith("s3://"):
        store = _object_store()
        bucket, key = split_url(dest)
        store.put(bucket, key, data)
        store.put(bucket, key + ".sha256", sidecar)
        return
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    write_atomic(path.with_name(path.name + ".sha256"), sidecar)


def _table(report: TrainReport) -> str:
    scores = report["scores"]
    assert isinstance(scores, dict)
    lines = [f"{'forecaster':<24} {'MAE':>10} {'MAPE %':>8}"]
    for name, s in scores.items():
        lines.append(f"{name:<24} {s['mae']:>10.1f} {s['mape_percent']:>8.2f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecasting.train", description=__doc__)
    parser.add_argument("--input", required=True, help="parquet path or s3://bucket/key")
    parser.add_argument("--output", required=True, help="artifact path or s3://bucket/key")
    parser.add_argument("--time-col", default="time")
    parser.add_argument("--target", default=defaults.SERIES_COLUMN)
    parser.add_argument("--max-lag", type=int, default=336, help="lags 1..N (rows needed)")
    parser.add_argument("--horizon", type=int, default=48, help="steps predicted at most")
    parser.add_argument("--holdout-rows", type=int, default=672)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--report", help="also write the report as JSON to this path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        data, report = train(
            _read_input(args.input),
            time_col=args.time_col,
            target=args.target,
            max_lag=args.max_lag,
            horizon=args.horizon,
            holdout_rows=args.holdout_rows,
            alpha=args.alpha,
        )
    except (ForecastingError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write_artifact(args.output, data)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(_table(report))
    print(f"model_version {report['model_version']}  sha256 {report['sha256']}")
    print(f"holdout: last {report['holdout_rows']} rows, horizon {report['horizon']} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
