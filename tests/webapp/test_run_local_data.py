"""``make run DATA=<parquet> MODEL=<artifact>`` (``RUN_DATA``, ``MODEL_PATH``): files whose
columns are not the sample's, replayed by the daemon and served by their model, with times on
their calendar, intervals, and caller histories in their own column names down to the
model's minimum. One synthetic monthly file of two series, and the public datasets of the
accuracy report (statsmodels, a dev dependency)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import Forecaster, load_file
from forecasting.train import load_frame
from forecasting.train import main as train_main
from scripts.accuracy import DATASETS
from tests.webapp._run_local import get, post, run_local

pytestmark = pytest.mark.server


def _train(tmp_path: Path, frame: pd.DataFrame, *columns: str) -> tuple[Path, Path, Forecaster]:
    """Write ``frame``, train a Ridge model on it with ``--time-col``, ``--target`` and
    optionally ``--series-col`` = ``columns``."""
    data, model = tmp_path / "input.parquet", tmp_path / "input.skops"
    frame.to_parquet(data)
    names = ("--time-col", "--target", "--series-col")
    argv = ["--input", str(data), "--output", str(model), "--models", "ridge"]
    argv += [arg for pair in zip(names, columns, strict=False) for arg in pair]
    assert train_main(argv) == 0
    digest = Path(f"{model}.sha256").read_text().split()[0]
    return data, model, load_file(model, sha256=digest)


@contextlib.contextmanager
def make_run(tmp_path: Path, data: Path, model: Path) -> Iterator[int]:
    """``make run DATA=data MODEL=model`` until ready: its port."""
    settings = {"RUN_DATA": str(data), "MODEL_PATH": str(model), "REPLAY_RATE": "50"}
    with run_local(tmp_path, WEB_CONCURRENCY="1", **settings) as run:
        yield run.port


def _history(model: Forecaster, frame: pd.DataFrame, rows: int) -> dict[str, list]:
    """The last ``rows`` rows of the file's first series, in the model's column names."""
    series = load_frame(
        frame, time_col=model.time_col, target=model.target, series_col=model.series_col
    )
    t, v = next(iter(series.values()))
    keep = np.isfinite(v)
    t, v = t[keep][-rows:], v[keep][-rows:]
    times = pd.DatetimeIndex(t).strftime("%Y-%m-%dT%H:%M:%SZ").tolist()
    return {model.time_col: times, model.target: v.tolist()}


def _on_calendar(model: Forecaster, predictions: list[dict]) -> bool:
    times = pd.DatetimeIndex([p["time"] for p in predictions]).tz_localize(None).as_unit("ns").asi8
    return all(model.frequency.on_calendar(int(t)) for t in times) and bool(
        (model.frequency.positions(times) == np.arange(len(times))).all()
    )


def test_make_run_replays_a_monthly_file_with_its_model(tmp_path):
    months = pd.date_range("1990-01-01", periods=240, freq="MS")
    rng = np.random.default_rng(0)
    frame = pd.concat(
        pd.DataFrame(
            {
                "month": months,
                "symbol": name,
                "price": level
                * (1 + 0.2 * np.sin(np.arange(240) * np.pi / 6) + 0.01 * rng.normal(size=240)),
            }
        )
        for name, level in (("A", 50.0), ("B", 900.0))
    )
    data, path, model = _train(tmp_path, frame, "month", "price", "symbol")
    with make_run(tmp_path, data, path) as port:
        # At 50 events/s the 120 streamed months of each series run out in about 5 s: the
        # replay goes on along the calendar, and the window stays forecastable.
        time.sleep(6)
        status, series = get(port, "/series")
        assert status == 200 and [s["series_id"] for s in series["items"]] == ["A", "B"]
        status, body = post(port, "/predict", {"inference_length": 3})
        assert status == 422 and body["errors"][0]["code"] == "requires_series_id"
        answers = {}
        for name in ("A", "B"):
            status, body = post(
                port,
                "/predict",
                {"series_id": name, "inference_length": 3, "quantiles": [0.1, 0.9]},
            )
            assert status == 200, body
            assert body["method"] == "ridge-l60" and body["series_id"] == name
            times = [p["time"] for p in body["predictions"]]
            assert all(t[8:] == "01T00:00:00Z" for t in times), times
            assert all(p["quantiles"]["0.1"] < p["quantiles"]["0.9"] for p in body["predictions"])
            answers[name] = body["predictions"][0]["value"]
        assert answers["B"] > 5 * answers["A"]  # each series forecast at its own level
        history = frame[frame.symbol == "B"].tail(30)
        status, body = post(
            port,
            "/predict",
            {
                "data": {
                    "month": history.month.dt.strftime("%Y-%m-%d").tolist(),
                    "price": history.price.tolist(),
                },
                "inference_length": 2,
            },
        )
        assert status == 200, body
        assert body["method"] == "ridge-l24" and body["source"] == "request"
        assert [p["time"] for p in body["predictions"]] == [
            "2010-01-01T00:00:00Z",
            "2010-02-01T00:00:00Z",
        ]
    assert model.min_rows == 24


@pytest.mark.parametrize("name", ["co2", "elnino", "macro", "sunspots"])
def test_each_public_dataset_trains_and_is_served(tmp_path, name):
    dataset = next(d for d in DATASETS if d.name == name)
    frame = dataset.load()
    columns = [dataset.time_col, dataset.target, *([dataset.series_col] * bool(dataset.series_col))]
    data, path, model = _train(tmp_path, frame, *columns)
    with make_run(tmp_path, data, path) as port:
        status, listed = get(port, "/series")
        assert status == 200 and listed["total"] == len(set(frame.get(dataset.series_col, [0])))
        first = {"series_id": listed["items"][0]["series_id"]} if dataset.series_col else {}
        ask = {**first, "inference_length": model.horizon, "quantiles": [0.1, 0.9]}
        status, body = post(port, "/predict", ask)
        assert status == 200, body
        assert len(body["predictions"]) == model.horizon and _on_calendar(
            model, body["predictions"]
        )
        assert all(
            p["quantiles"]["0.1"] <= p["value"] <= p["quantiles"]["0.9"]
            for p in body["predictions"]
        )
        status, body = post(
            port, "/predict", {"data": _history(model, frame, model.min_rows), "quantiles": [0.5]}
        )
        assert status == 200, body
        assert body["method"] == model.tiers[-1].method
        status, body = post(port, "/predict", {"data": _history(model, frame, model.min_rows - 1)})
        assert status == 422 and f"at least {model.min_rows} rows" in body["detail"], body
