"""Per-worker private caches: each Gunicorn worker keeps its own window and its own consumer.

The usual next step after the seed design: ``gunicorn -w N`` for the cores, and every worker
process bootstraps its own copy of the window (``BASELINE_WINDOW_FILE``) and starts its own
Kafka consumer thread over every partition (``gunicorn_private.py`` does both in
``post_worker_init``). A request reads its worker's frame without copying (the frame is
replaced, never modified). What it costs: N copies of the window in memory, N consumers on
the broker, and workers that disagree about the newest event until each consumer has caught
up (the split brain, visible in ``/cache``: each worker answers with its own pid and newest
time).

Run (``bench.compare`` does)::

    MODEL_PATH=model.skops BASELINE_WINDOW_FILE=window.arrow WEB_BIND=127.0.0.1:8001 \\
    python -m gunicorn -c bench/baselines/gunicorn_private.py bench.baselines.private:app
"""

from __future__ import annotations

import json
import os
from typing import Any

import pandas as pd
from flask import Flask, Response, request

from bench.baselines._frame import PredictError
from bench.baselines._state import WindowState
from bench.baselines.config import BaselineConfig

__all__ = ["WorkerCache", "app", "create_app", "start_worker", "stop_worker"]


class WorkerCache(WindowState):
    """This worker's window; a request reads the current frame by reference."""

    def frame_for_request(self) -> pd.DataFrame:
        """This worker's current frame, by reference (it is replaced, never modified)."""
        with self.lock:
            frame = self.df
        return frame


cache = WorkerCache()


def start_worker() -> None:
    """Load this worker's window and model and start its consumer (Gunicorn hook, after
    fork: no Kafka client may exist before it)."""
    cache.start(BaselineConfig.from_env(os.environ))


def stop_worker() -> None:
    cache.stop()


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )


def create_app() -> Flask:
    """The Flask app: ``POST /predict``, ``GET /cache``, ``GET /swaps``, ``GET /healthz``."""
    flask_app = Flask(__name__)

    @flask_app.post("/predict")
    def predict() -> Response:
        try:
            return _json(cache.predict(request.get_data(cache=False)))
        except PredictError as exc:
            return _json({"status": exc.status, "detail": str(exc)}, exc.status)

    @flask_app.get("/cache")
    def describe() -> Response:
        return _json(cache.cache())

    @flask_app.get("/swaps")
    def swaps() -> Response:
        return _json(cache.swap_log())

    @flask_app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"})

    return flask_app


app = create_app()
