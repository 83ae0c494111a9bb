"""``python -m forecasting.train`` end to end on small series of other shapes: several
monthly series in one file (one global model), business days, an hour missing, and the
refusals that name what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecasting import load_bytes, sha256_hex
from forecasting.train import Options, main, train_model


def _seasonal(times: pd.DatetimeIndex, period: int, level: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = np.arange(len(times))
    shape = 1 + 0.2 * np.sin(2 * np.pi * k / period) + 0.002 * k
    return level * (shape + 0.02 * rng.normal(size=len(times)))


def _write(tmp_path, frame: pd.DataFrame) -> str:
    path = tmp_path / "input.parquet"
    frame.to_parquet(path)
    return str(path)


def test_several_monthly_series_train_one_global_model(tmp_path, capsys):
    months = pd.date_range("2000-01-01", periods=150, freq="MS")
    frame = pd.concat(
        pd.DataFrame({"month": months, "symbol": name, "price": _seasonal(months, 12, level, i)})
        for i, (name, level) in enumerate([("A", 10.0), ("B", 1_000.0), ("C", 1e5)])
    )
    out, report = tmp_path / "m.skops", tmp_path / "r.json"
    argv = [
        "--input",
        _write(tmp_path, frame),
        "--time-col",
        "month",
        "--target",
        "price",
        "--series-col",
        "symbol",
        "--output",
        str(out),
        "--report",
        str(report),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    parsed = json.loads(report.read_text())
    data = out.read_bytes()
    assert parsed["sha256"] == sha256_hex(data)
    assert parsed["frequency"] == "MS" and parsed["season"] == 12 and parsed["min_rows"] == 24
    assert parsed["series"] == parsed["series_evaluated"] == 3
    assert {"ridge", "hgb"} <= set(parsed["selection"])
    assert parsed["selection"]["winner"] in ("ridge", "hgb")
    assert parsed["holdout"]["model"]["mase"] < parsed["holdout"]["seasonal_naive"]["mase"]
    model = load_bytes(data, sha256=parsed["sha256"])
    assert (model.time_col, model.target, model.series_col) == ("month", "price", "symbol")
    prices = frame[frame.symbol == "C"].price.to_numpy()
    origin = model.prepare(months.as_unit("ns").asi8[-30:], prices[-30:])
    times, _ = model.predict(origin, 3)
    assert pd.DatetimeIndex(times).strftime("%Y-%m-%d").tolist() == [
        "2012-07-01",
        "2012-08-01",
        "2012-09-01",
    ]
    assert "seasonal_naive" in capsys.readouterr().out


def test_business_days_and_a_missing_hour_train(tmp_path, capsys):
    days = pd.bdate_range("2020-01-01", periods=300)
    frame = pd.DataFrame({"date": days, "close": _seasonal(days, 5, 50.0, 1)})
    assert (
        main(
            [
                "--input",
                _write(tmp_path, frame),
                "--time-col",
                "date",
                "--target",
                "close",
                "--output",
                str(tmp_path / "b.skops"),
                "--models",
                "ridge",
            ]
        )
        == 0
    )
    assert "frequency B," in capsys.readouterr().out
    hours = pd.date_range("2021-01-01", periods=1000, freq="h").delete(500)
    frame = pd.DataFrame({"time": hours, "temp": _seasonal(hours, 24, 15.0, 2)})
    assert (
        main(
            [
                "--input",
                _write(tmp_path, frame),
                "--target",
                "temp",
                "--output",
                str(tmp_path / "h.skops"),
                "--models",
                "ridge",
            ]
        )
        == 0
    )
    assert "frequency h," in capsys.readouterr().out


def test_several_series_without_series_col_name_the_fix(tmp_path, capsys):
    months = pd.date_range("2000-01-01", periods=40, freq="MS")
    frame = pd.concat([pd.DataFrame({"time": months, "y": 1.0, "s": s}) for s in "AB"])
    assert (
        main(["--input", _write(tmp_path, frame), "--target", "y", "--output", str(tmp_path / "m")])
        == 2
    )
    err = capsys.readouterr().err
    assert "2000-01-01T00:00:00Z appears 2 times" in err and "--series-col" in err


def test_a_long_gap_is_refused_by_name_when_asked(tmp_path, capsys):
    hours = pd.date_range("2021-01-01", periods=1000, freq="h").delete(range(500, 510))
    frame = pd.DataFrame({"time": hours, "meter": "m-1", "kw": _seasonal(hours, 24, 3.0, 3)})
    argv = [
        "--input",
        _write(tmp_path, frame),
        "--target",
        "kw",
        "--series-col",
        "meter",
        "--output",
        str(tmp_path / "m"),
        "--gaps",
        "refuse",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'m-1'" in err and "gap of 10 missing" in err and "2021-01-21T19:00:00Z" in err


@pytest.mark.parametrize("column", ["--target", "--time-col", "--series-col"])
def test_a_missing_column_is_named(tmp_path, capsys, column):
    months = pd.date_range("2000-01-01", periods=40, freq="MS")
    frame = pd.DataFrame({"time": months, "demand_mw": 1.0})
    argv = ["--input", _write(tmp_path, frame), "--output", str(tmp_path / "m"), column, "nope"]
    assert main(argv) == 2
    assert "column 'nope'" in capsys.readouterr().err


def test_a_run_short_for_the_default_lags_trains_with_a_shallower_deepest_tier():
    # Monthly defaults: tiers 60 and 24, holdout 48, horizon 12. 150 rows leave room for 42
    # lags before one calibration fold, the holdout and a horizon of training origins.
    months = pd.date_range("2000-01-01", periods=150, freq="MS")
    frame = pd.DataFrame({"time": months, "y": _seasonal(months, 12, 50.0, 5)})
    model, report = train_model(frame, target="y", options=Options(candidates=("ridge",)))
    assert report["tiers"] == [42, 24] and model.min_rows == 24
    assert report["selection"]["window"].startswith("1 calibration fold")
    # the oldest fold's model trains on exactly one horizon of origins: no crash at the edge
    model, report = train_model(frame.iloc[:132], target="y", options=Options(tiers=(24,)))
    assert report["tiers"] == [24]


def test_a_run_too_short_for_any_fold_names_the_rows_it_needs(tmp_path, capsys):
    months = pd.date_range("2000-01-01", periods=131, freq="MS")
    frame = pd.DataFrame({"time": months, "y": _seasonal(months, 12, 50.0, 5)})
    argv = ["--input", _write(tmp_path, frame), "--target", "y", "--output", str(tmp_path / "m")]
    argv += ["--lags", "24"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "a run of 132 regular rows" in err and "the longest run is 131 rows" in err
