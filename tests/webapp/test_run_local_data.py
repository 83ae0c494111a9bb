"""``make run DATA=<parquet> MODEL=<artifact>`` (``RUN_DATA``, ``MODEL_PATH``): a monthly
file of two series whose columns are not the sample's, replayed by the daemon and served by
its model, with month-start times, intervals and caller histories in its own column names."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from forecasting.train import main as train_main
from tests.webapp._support import ROOT, new_shm_window, remove_tree
from tests.webapp.test_webapp_run_local import _free_port, _get, clean_environment

pytestmark = pytest.mark.server


def _post(port: int, body: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(
            "POST",
            "/predict",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


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
    data, model = tmp_path / "prices.parquet", tmp_path / "prices.skops"
    frame.to_parquet(data)
    assert (
        train_main(
            [
                "--input",
                str(data),
                "--time-col",
                "month",
                "--target",
                "price",
                "--series-col",
                "symbol",
                "--output",
                str(model),
                "--models",
                "ridge",
            ]
        )
        == 0
    )
    window, parent = new_shm_window(model.read_bytes())  # only for a private shm directory
    window.close()
    port = _free_port()
    env = {
        **clean_environment(),
        "RUN_DIR": str(tmp_path),
        "RUN_DATA": str(data),
        "MODEL_PATH": str(model),
        "SHM_DIR": str(parent / "run"),
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WEB_ACCESS_LOG": "",
        "LOG_LEVEL": "WARNING",
        "REPLAY_RATE": "50",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.run_local"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    try:
        deadline, ready = time.monotonic() + 60, False
        while time.monotonic() < deadline and not ready:
            assert proc.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(OSError):
                ready = _get(port, "/readyz")[0] == 200
            time.sleep(0.2)
        assert ready, log.read_text()[-3000:]
        # At 50 events/s the 120 streamed months run out in about 2.4 s: the replay goes on
        # along the calendar, and the window stays forecastable.
        time.sleep(4)
        status, body = _post(port, {"inference_length": 3, "quantiles": [0.1, 0.9]})
        assert status == 200, body
        assert body["method"] == "ridge-l36"
        times = [p["time"] for p in body["predictions"]]
        assert all(t[8:] == "01T00:00:00Z" for t in times), times
        assert all(p["quantiles"]["0.1"] < p["quantiles"]["0.9"] for p in body["predictions"])
        history = frame[frame.symbol == "B"].tail(30)
        status, body = _post(
            port,
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
        status, body = _post(
            port,
            {
                "data": {
                    "month": history.month.dt.strftime("%Y-%m-%d").tolist()[-23:],
                    "price": history.price.tolist()[-23:],
                }
            },
        )
        assert status == 422 and "at least 24 rows" in body["detail"]
        assert "replaying the first, 'A'" in log.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        remove_tree(parent)
