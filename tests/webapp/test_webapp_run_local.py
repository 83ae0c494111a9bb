"""``python -m scripts.run_local``: daemon + Gunicorn as children, stopped cleanly by a signal."""

from __future__ import annotations

import psutil
import pytest

from forecasting.train import write_artifact
from tests._wait import wait_until
from tests.webapp._run_local import get, post, run_local

# Every test here starts make run's supervisor, daemon and Gunicorn: not a unit test.
pytestmark = pytest.mark.server


def _moved_on(port: int, before: dict) -> dict | None:
    """``/cache`` when it serves a newer generation ending later than ``before``, else None."""
    status, cache = get(port, "/cache")
    if status != 200:
        return None
    newer = cache["generation"] > before["generation"] and cache["time_max"] > before["time_max"]
    return cache if newer else None


def test_run_local_serves_predictions_and_stops_both_children_on_sigint(artifact, tmp_path):
    model = tmp_path / "model.skops"
    write_artifact(str(model), artifact)
    with run_local(tmp_path, MODEL_PATH=str(model), WEB_CONCURRENCY="2") as run:
        status, cache = get(run.port, "/cache")
        assert status == 200 and cache["source"] == "replay" and cache["rows"] >= 336
        # The replay source keeps publishing: the served window moves on.
        later = wait_until(
            lambda: _moved_on(run.port, cache), timeout=30, what="a later window served by /cache"
        )
        status, forecast = post(run.port, "/predict", {})
        assert status == 200 and len(forecast["predictions"]) == 1
        assert forecast["generation"] >= later["generation"]
        children = psutil.Process(run.proc.pid).children(recursive=True)
        assert len(children) >= 4  # daemon, gunicorn master and its two workers
    # Left by SIGINT, with exit code 0.
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    text = run.log.read_text()
    assert "gunicorn exited with 0" in text and "cache_daemon exited with 0" in text
