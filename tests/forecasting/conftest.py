"""Fixtures for the forecasting tests: the sample series as numpy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.features import FloatArray, IntArray
from forecasting.train import Options, Trained, load_series, train_evaluated

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "electricity_demand_halfhourly.parquet"
STEP = 30 * 60 * 1_000_000_000


@pytest.fixture(scope="session")
def sample_frame() -> pd.DataFrame:
    return pd.read_parquet(SAMPLE)


@pytest.fixture(scope="session")
def series(sample_frame: pd.DataFrame) -> tuple[IntArray, FloatArray]:
    t, v = load_series(sample_frame, time_col="time", target="demand_mw")
    t.flags.writeable = False
    v.flags.writeable = False
    return t, v


@pytest.fixture
def ramp() -> tuple[IntArray, FloatArray]:
    """A short regular half-hourly series 0, 1, 2, ... starting 2000-01-03 (a Monday)."""
    start = np.datetime64("2000-01-03T00:00", "ns").astype(np.int64)
    t = start + STEP * np.arange(20, dtype=np.int64)
    return t, np.arange(20, dtype=np.float64)


@pytest.fixture(scope="session")
def quarterly_frame() -> pd.DataFrame:
    """Two quarterly series (``s``: a, b) of 60 rows from 2000: a seasonal pattern on a
    trend, with noise."""
    rng = np.random.default_rng(7)
    times = pd.date_range("2000-01-01", periods=60, freq="QS-JAN")
    frames = []
    for sid, level in (("a", 10.0), ("b", 200.0)):
        y = level + np.tile([1.0, 3.0, 2.0, 0.0], 15) + 0.1 * np.arange(60)
        frames.append(pd.DataFrame({"time": times, "s": sid, "y": y + rng.normal(0, 0.3, 60)}))
    return pd.concat(frames)


@pytest.fixture(scope="session")
def tiny(quarterly_frame: pd.DataFrame) -> Trained:
    """:data:`quarterly_frame` trained with tiers 8 and 4, horizon 3, holdout 6, Ridge only:
    three calibration folds (rows 36, 42 and 48 on) and the holdout (rows 54 to 59)."""
    options = Options(
        tiers=(8, 4), horizon=3, holdout=6, season=4, candidates=("ridge",), frequency="QS-JAN"
    )
    return train_evaluated(
        quarterly_frame, time_col="time", target="y", series_col="s", options=options
    )
