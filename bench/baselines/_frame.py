"""The pandas side of the baselines: a private window, the consumer's update, a forecast.

Everything here works on a ``DataFrame`` with columns ``time`` (``datetime64[ns, UTC]``) and
one float64 value column, the shape the seed report kept in ``service.df``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from forecasting import Forecaster, ForecastingError, load_file

__all__ = [
    "PredictError",
    "append_events",
    "describe",
    "empty_window",
    "forecast",
    "load_model",
    "load_window",
    "parse_predict_body",
]


class PredictError(ValueError):
    """A request body the baseline refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def load_model(path: Path) -> Forecaster:
    """The model artifact at ``path``, verified against its ``<path>.sha256`` sidecar."""
    sidecar = path.with_name(path.name + ".sha256")
    sha = sidecar.read_text().split()[0]
    return load_file(path, sha256=sha)


def load_window(path: Path) -> pd.DataFrame:
    """A copy of the window stored in the Arrow IPC file ``path``, owned by this process.

    The file is mapped only while ``to_pandas`` copies it into the process's own memory
    (measured: +1 window of unique memory per process, the transient mapping released), so
    every process that calls this holds its own copy: the per-process cache of the designs
    compared with ours.
    """
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()
        frame = table.to_pandas()
        del table
    return frame


def empty_window(column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": pd.Series([], dtype="datetime64[ns, UTC]"),
            column: pd.Series([], dtype="float64"),
        }
    )


def append_events(
    frame: pd.DataFrame, times_ns: list[int], values: list[float], *, column: str, max_rows: int
) -> pd.DataFrame:
    """``frame`` plus the events: deduplicated by time (last wins), sorted, the newest
    ``max_rows`` rows kept. Returns a new frame; ``frame`` is not modified."""
    new = pd.DataFrame(
        {
            "time": pd.to_datetime(np.asarray(times_ns, dtype=np.int64), utc=True),
            column: np.asarray(values, dtype=np.float64),
        }
    )
    merged = pd.concat([frame, new], ignore_index=True) if len(frame) else new
    merged = merged.drop_duplicates("time", keep="last").sort_values("time", kind="stable")
    return merged.iloc[-max_rows:].reset_index(drop=True)


def parse_predict_body(raw: bytes, *, horizon: int) -> int:
    """The number of steps asked for by a ``/predict`` body (``{}`` or
    ``{"inference_length": k}``); raises :class:`PredictError` otherwise."""
    try:
        body: Any = json.loads(raw or b"{}")
    except ValueError as exc:
        raise PredictError(400, f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise PredictError(422, "body must be a JSON object")
    steps = body.get("inference_length", 1)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= horizon:
        raise PredictError(422, f"inference_length must be an integer in 1..{horizon}")
    return steps


def forecast(model: Forecaster, frame: pd.DataFrame, steps: int, *, column: str) -> dict[str, Any]:
    """The response of ``/predict`` for ``frame``: the same model and the same tail-only
    feature preparation as the service, computed on every request (these designs have no
    generation to remember it by)."""
    tail = frame.iloc[-2 * model.min_rows :]
    times = tail["time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    values = tail[column].to_numpy(dtype=np.float64)
    try:
        origin = model.prepare(times, values, max_gap_steps=48)
    except ForecastingError as exc:
        raise PredictError(503, f"window cannot be forecast: {exc}") from None
    at, predicted = model.predict(origin, steps)
    stamps = np.datetime_as_string(at.astype("datetime64[ns]"), unit="s")
    return {
        "model_version": model.version,
        "window": {"rows": len(frame)},
        "predictions": [
            {"time": f"{t}Z", "value": v} for t, v in zip(stamps, predicted.tolist(), strict=True)
        ],
    }


def describe(frame: pd.DataFrame) -> dict[str, Any]:
    """What ``/cache`` reports: the row count and the newest timestamp (ISO, UTC)."""
    if not len(frame):
        return {"rows": 0, "time_max": None}
    newest = frame["time"].iloc[-1]
    return {"rows": len(frame), "time_max": newest.strftime("%Y-%m-%dT%H:%M:%SZ")}
