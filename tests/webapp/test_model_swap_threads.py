"""Changing the model under threaded load: every answer comes from one model.

A publisher thread alternates generations naming two models with different limits (model A:
48 lags, horizon 12; model B: 336 lags, horizon 48) while request threads, as in a gthread
worker, call the app concurrently with bodies whose verdict differs between the models. A
request that checked its body against one model's limits and ran another model on it would
answer a 500 (too few rows for B's lags) or a forecast that is neither model's. Every answer
must be what one model gives: the model the answering generation names, or, for a refusal,
one model's limit. The thread switch interval is shortened so that threads interleave often.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from forecasting import Forecaster, load_bytes
from scripts.sample_window import install_model, sample_table
from tests.webapp._support import ShmWindow, train_artifact
from tests.webapp.conftest import make_app

THREADS = 8
SECONDS = 3.0
ROWS = 1000
CALLER_ROWS = 100  # enough for model A's 48 lags, too few for model B's 336
CALLER_STEPS = 5


@dataclass(frozen=True)
class Answer:
    kind: str
    status: int
    body: dict[str, Any]


def _times_ns(table: Any) -> np.ndarray:
    return table.column("time").to_numpy().astype("datetime64[ns]").view(np.int64)


def _window_forecast(model: Forecaster) -> list[float]:
    table = sample_table(ROWS)
    origin = model.prepare(_times_ns(table), table.column("demand_mw").to_numpy())
    return model.predict(origin, model.horizon)[1].tolist()


def _caller_body() -> tuple[dict[str, Any], Any]:
    table = sample_table(CALLER_ROWS, end=ROWS - 200)
    frame = table.to_pandas()
    data = {
        "time": [t.isoformat() for t in frame["time"]],
        "demand_mw": frame["demand_mw"].tolist(),
    }
    return {"data": data, "inference_length": CALLER_STEPS}, table


@pytest.fixture
def small_model() -> bytes:
    return train_artifact(max_lag=48, horizon=12)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_a_model_change_under_threaded_load_never_mixes_two_models(
    window: ShmWindow, artifact: bytes, small_model: bytes, fast_switching: None
) -> None:
    meta_a = install_model(window.directory, small_model)
    meta_b = window.model_meta
    model_a, model_b = load_bytes(small_model, sha256=None), load_bytes(artifact, sha256=None)
    assert (model_a.min_rows, model_a.horizon) == (48, 12)
    assert (model_b.min_rows, model_b.horizon) == (336, 48)
    models = {model_a.version: model_a, model_b.version: model_b}
    expected_window = {version: _window_forecast(m) for version, m in models.items()}
    caller, caller_table = _caller_body()
    caller_origin = model_a.prepare(
        _times_ns(caller_table), caller_table.column("demand_mw").to_numpy()
    )
    expected_caller = model_a.predict(caller_origin, CALLER_STEPS)[1].tolist()

    version_of: dict[int, str] = {window.publish(ROWS, model=meta_b): model_b.version}
    app = make_app(window, MAX_DATA_AGE_MS="600000")
    stop = threading.Event()
    answers: list[Answer] = []
    failures: list[str] = []
    lock = threading.Lock()
    requests = {
        "window-default": ("POST", {}),
        "window-12": ("POST", {"inference_length": 12}),
        "window-48": ("POST", {"inference_length": 48}),
        "caller": ("POST", caller),
        "readyz": ("GET", None),
    }

    def publish() -> None:
        turn = 0
        while not stop.is_set():
            meta, version = ((meta_a, model_a.version), (meta_b, model_b.version))[turn % 2]
            with lock:
                version_of[window.publish(ROWS, model=meta)] = version
            turn += 1
            time.sleep(0.005)

    def ask(offset: int) -> None:
        client = app.test_client()
        kinds = list(requests)
        i = offset
        while not stop.is_set():
            kind = kinds[i % len(kinds)]
            i += 1
            method, body = requests[kind]
            try:
                if method == "GET":
                    resp = client.get("/readyz")
                else:
                    resp = client.post("/predict", json=body)
                answer = Answer(kind, resp.status_code, resp.get_json(force=True))
            except Exception as exc:  # noqa: BLE001 (reported below, with the others)
                with lock:
                    failures.append(f"{kind}: {exc!r}")
                continue
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=publish)]
    threads += [threading.Thread(target=ask, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert not failures, failures[:5]

    seen: Counter[tuple[str, int, str]] = Counter()
    for answer in answers:
        body, kind = answer.body, answer.kind
        assert answer.status < 500, (kind, body)
        if kind == "readyz":
            assert answer.status == 200, body
            seen[(kind, 200, "")] += 1
            continue
        if answer.status == 200:
            version = version_of[body["generation"]]
            assert body["model_version"] == version, (kind, body["generation"])
            values = [p["value"] for p in body["predictions"]]
            if kind == "caller":
                assert version == model_a.version and body["source"] == "request"
                np.testing.assert_allclose(values, expected_caller, rtol=1e-9)
            else:
                assert body["source"] == "window"
                want = expected_window[version][: len(values)]
                np.testing.assert_allclose(values, want, rtol=1e-9)
                assert len(values) == {"window-default": 1, "window-12": 12, "window-48": 48}[kind]
            seen[(kind, 200, version)] += 1
            continue
        assert answer.status == 422, (kind, body)
        error = body["errors"][0]
        if kind == "window-48":  # model A's horizon
            assert (error["code"], "between 1 and 12" in error["detail"]) == ("out_of_range", True)
            seen[(kind, 422, model_a.version)] += 1
        else:  # model B's lags
            assert kind == "caller", (kind, body)
            assert (error["code"], "at least 336" in error["detail"]) == ("too_few_rows", True)
            seen[(kind, 422, model_b.version)] += 1
    # Both models answered every kind of request they can answer, and refused the others.
    for version in models:
        for kind in ("window-default", "window-12"):
            assert seen[(kind, 200, version)], (kind, version, seen)
    assert seen[("window-48", 200, model_b.version)] and seen[("window-48", 422, model_a.version)]
    assert seen[("caller", 200, model_a.version)] and seen[("caller", 422, model_b.version)]
    assert len(version_of) > 20, f"only {len(version_of)} generations were published"
