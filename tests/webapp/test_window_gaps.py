"""A series of the shared window with missing steps: holes up to one season of the model's
frequency are interpolated, a longer hole starts the series again after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from forecasting import load_bytes
from forecasting.train import Options, train
from tests.webapp._support import ShmWindow
from tests.webapp.conftest import make_app
from webapp.snapshot_view import window_gap_bound

MONTHS = pd.date_range("1990-01-01", periods=240, freq="MS", tz="UTC")
SEASON = 12
LAGS = 24


def _monthly(months: pd.DatetimeIndex) -> pd.DataFrame:
    t = np.arange(len(months))
    values = 100.0 + 0.1 * t + 10.0 * np.sin(2 * np.pi * months.month.to_numpy() / SEASON)
    return pd.DataFrame({"time": months, "demand_mw": values})


@pytest.fixture(scope="module")
def artifact() -> bytes:
    options = Options(tiers=(LAGS,), horizon=6, candidates=("ridge",))
    data, _ = train(_monthly(MONTHS), time_col="time", target="demand_mw", options=options)
    return data


@pytest.fixture
def window(artifact: bytes, tmp_path: Path) -> Iterator[ShmWindow]:
    directory = tmp_path / "shm"
    directory.mkdir()
    win = ShmWindow(directory, artifact)
    try:
        yield win
    finally:
        win.close()


def test_the_window_bound_is_one_season_of_the_models_frequency(artifact: bytes) -> None:
    model = load_bytes(artifact, sha256=None)
    assert model.season == SEASON
    assert window_gap_bound(model) == SEASON


@pytest.mark.parametrize(("missing", "status"), [(SEASON, 200), (SEASON + 1, 503)])
def test_a_hole_is_filled_up_to_one_season(window: ShmWindow, missing: int, status: int) -> None:
    """Deep history, then ``missing`` months absent, then 10 months: fewer than the model's
    24 lags. Filled, the hole leaves a series long enough; not filled, the run after it is
    too short and the window cannot be forecast (503, naming why)."""
    before = MONTHS[:120]
    after = MONTHS[120 + missing : 120 + missing + 10]
    frame = _monthly(before.append(after))
    frame["time"] = frame["time"].dt.as_unit("ns")  # the window's time type
    window.publish_table(pa.Table.from_pandas(frame, preserve_index=False))
    window.write_status()
    reply = make_app(window).test_client().post("/predict", json={"inference_length": 3})
    assert reply.status_code == status, reply.data
    body = reply.get_json()
    if status == 200:
        times = [p["time"] for p in body["predictions"]]
        assert times[0].startswith(str(after[-1] + pd.DateOffset(months=1))[:10])
    else:
        assert "10 rows" in body["detail"] or "needs at least" in body["detail"], body
