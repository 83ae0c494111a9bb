"""Fixtures for the forecasting tests: the sample series as numpy arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.features import FloatArray, IntArray
from forecasting.train import load_series

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
