"""The seed report's design, minimal but faithful: one process, one lock, a copy per request.

One uvicorn process serves an ASGI app; a Kafka consumer thread started in the same process
(the report's ``INFERENCE_START_IN_APP=1``) replaces the module-level ``service.df`` with
each batch of events; every ``/predict`` takes ``service.lock`` and forecasts from
``service.df.copy(deep=True)``, exactly the report's::

    with df_read_lock:
        df_for_inference = service.df.copy(deep=True)

The handler runs on the event loop, like an ``async def`` FastAPI endpoint, which is the
cheapest way this design can serve (no thread hop); a raw ASGI app rather than FastAPI keeps
the framework's cost out of the comparison. The model and its use (tail-only features, one
Ridge predict) are the service's own.

Run (``bench.compare`` does)::

    MODEL_PATH=model.skops BASELINE_WINDOW_FILE=window.arrow \\
    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 KAFKA_TOPIC=demand \\
    python -m uvicorn bench.baselines.seed:app --fd 3

Endpoints: ``POST /predict`` (``{}`` or ``{"inference_length": k}``), ``GET /cache`` (pid,
rows, newest time), ``GET /swaps`` (when each frame was swapped in: the benchmark's exact
freshness), ``GET /healthz``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pandas as pd

from bench.baselines._frame import PredictError
from bench.baselines._state import WindowState
from bench.baselines.config import BaselineConfig

__all__ = ["SeedService", "app", "service"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class SeedService(WindowState):
    """The process-wide state (``service.df``, ``service.lock``); a request deep-copies."""

    def frame_for_request(self) -> pd.DataFrame:
        """The report's read path: a deep copy of ``service.df`` taken under the lock."""
        with self.lock:
            df_for_inference = self.df.copy(deep=True)
        return df_for_inference


service = SeedService()


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                service.start(BaselineConfig.from_env(os.environ))
            except Exception as exc:  # noqa: BLE001 (reported to uvicorn, which exits)
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            service.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    route = (scope["method"], scope["path"])
    if route == ("POST", "/predict"):
        raw = await _read_body(receive)
        try:
            await _send_json(send, 200, service.predict(raw))
        except PredictError as exc:
            await _send_json(send, exc.status, {"status": exc.status, "detail": str(exc)})
    elif route == ("GET", "/cache"):
        await _send_json(send, 200, service.cache())
    elif route == ("GET", "/swaps"):
        await _send_json(send, 200, service.swap_log())
    elif route == ("GET", "/healthz"):
        await _send_json(send, 200, {"status": "ok"})
    else:
        await _send_json(send, 404, {"status": 404, "detail": f"no route {route}"})
