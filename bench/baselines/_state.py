"""The window state both baselines keep per process: a DataFrame, a lock, a model, a consumer."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any

import pandas as pd

from bench.baselines._consumer import ConsumerThread
from bench.baselines._frame import (
    append_events,
    describe,
    empty_window,
    forecast,
    load_model,
    load_window,
    parse_predict_body,
)
from bench.baselines.config import BaselineConfig
from forecasting import Forecaster

__all__ = ["WindowState"]

# Swaps remembered for ``/swaps``: a freshness phase makes a few hundred.
_SWAPS_KEPT = 100_000


class WindowState:
    """One process's copy of the window.

    ``df`` is replaced, never modified in place: the consumer thread builds the next frame
    and swaps it in under ``lock``. Subclasses decide what a request does with it
    (:meth:`frame_for_request`).
    """

    def __init__(self) -> None:
        self.df: pd.DataFrame = empty_window("demand_mw")
        self.lock = threading.Lock()
        self.model: Forecaster | None = None
        self.config: BaselineConfig | None = None
        self.consumer: ConsumerThread | None = None
        # (CLOCK_MONOTONIC ns, newest event ns) of each swap: from that instant on, every
        # request of this process reads a frame holding that event (``/swaps``).
        self.swaps: deque[tuple[int, int]] = deque(maxlen=_SWAPS_KEPT)

    def start(self, config: BaselineConfig) -> None:
        """Preload the window (a private copy) and the model, then start this process's
        consumer thread when a broker is configured, waiting until it is positioned."""
        self.config = config
        self.model = load_model(config.model_path)
        self.df = (
            load_window(config.window_file)
            if config.window_file is not None
            else empty_window(config.column)
        )
        if config.bootstrap_servers:
            self.consumer = ConsumerThread(
                config.bootstrap_servers,
                config.topic,
                config.column,
                self.on_events,
                from_beginning=config.from_beginning,
            )
            self.consumer.start()
            self.consumer.ready.wait(30)

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
            self.consumer = None

    def on_events(self, times_ns: list[int], values: list[float]) -> None:
        """Called by the consumer thread: build the new frame, swap it in under the lock.

        The single writer builds outside the lock, the kindest reading of the seed report
        (the lock then guards only the swap and the readers).
        """
        assert self.config is not None
        updated = append_events(
            self.df, times_ns, values, column=self.config.column, max_rows=self.config.window_rows
        )
        newest = int(updated["time"].iloc[-1].value) if len(updated) else None
        with self.lock:
            self.df = updated
            if newest is not None:
                # Stamped before the lock is released: a request that reads the frame after
                # this instant waits for the lock and gets the new frame.
                self.swaps.append((time.monotonic_ns(), newest))

    def frame_for_request(self) -> pd.DataFrame:
        """The frame a request forecasts from: the design's read path."""
        raise NotImplementedError

    def predict(self, raw: bytes) -> dict[str, Any]:
        """The answer of ``POST /predict`` with body ``raw`` (:class:`PredictError` when the
        body is refused or the window cannot be forecast)."""
        assert self.model is not None and self.config is not None
        steps = parse_predict_body(raw, horizon=self.model.horizon)
        return forecast(self.model, self.frame_for_request(), steps, column=self.config.column)

    def cache(self) -> dict[str, Any]:
        """What ``/cache`` answers: this process's pid, row count and newest time."""
        with self.lock:
            frame = self.df
        return {"pid": os.getpid(), **describe(frame)}

    def swap_log(self) -> dict[str, Any]:
        """What ``/swaps`` answers: this process's pid and its swaps, oldest first, as
        ``[monotonic ns, newest event ns]`` pairs (the clock is the machine's, shared by every
        process, so a benchmark can line them up with its own)."""
        with self.lock:
            swaps = list(self.swaps)
        return {"pid": os.getpid(), "swaps": [list(swap) for swap in swaps]}
