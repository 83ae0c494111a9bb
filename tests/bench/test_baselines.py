"""The baselines behave as the designs they stand for, on a real broker where they consume."""

from __future__ import annotations

import http.client
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import _servers as servers
from bench._series import STEP_NS, event_record, series_table, train_model, write_ipc
from bench.baselines import BaselineConfig, BaselineConfigError, BaselineUnavailableError
from bench.baselines._frame import PredictError, load_window, parse_predict_body
from bench.baselines.private import WorkerCache
from bench.baselines.redis_cache import (
    INSTALL_HINT,
    RedisServer,
    RedisWindowCache,
    find_redis_server,
)
from bench.baselines.seed import SeedService
from bench.compare.freshness import _exact, _latencies, _visible_from
from tests._stack import StackHandle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory.mktemp("model"))


def test_config_names_the_bad_variable(model_path: Path) -> None:
    with pytest.raises(BaselineConfigError, match="MODEL_PATH"):
        BaselineConfig.from_env({})
    with pytest.raises(BaselineConfigError, match="WINDOW_ROWS"):
        BaselineConfig.from_env({"MODEL_PATH": str(model_path), "WINDOW_ROWS": "many"})
    with pytest.raises(BaselineConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        BaselineConfig.from_env(
            {"MODEL_PATH": str(model_path), "KAFKA_BOOTSTRAP_SERVERS": "no-port"}
        )


def test_predict_body_is_validated() -> None:
    assert parse_predict_body(b"{}", horizon=48) == 1
    assert parse_predict_body(b'{"inference_length": 3}', horizon=48) == 3
    for body, status in ((b"{", 400), (b"[]", 422), (b'{"inference_length": 49}', 422)):
        with pytest.raises(PredictError) as caught:
            parse_predict_body(body, horizon=48)
        assert caught.value.status == status


def test_seed_copies_per_request_and_private_does_not(model_path: Path, tmp_path: Path) -> None:
    window = tmp_path / "window.arrow"
    write_ipc(series_table(500), window)
    config = BaselineConfig(model_path=model_path, window_file=window)
    seed, private = SeedService(), WorkerCache()
    seed.start(config)
    private.start(config)
    assert len(seed.df) == len(private.df) == 500
    copy = seed.frame_for_request()
    assert not np.shares_memory(copy["demand_mw"].to_numpy(), seed.df["demand_mw"].to_numpy())
    assert private.frame_for_request() is private.df
    seed_answer = seed.predict(b'{"inference_length": 2}')
    assert seed_answer == private.predict(b'{"inference_length": 2}')
    assert [p["time"] for p in seed_answer["predictions"]] == [
        "2024-01-01T00:01:00Z",
        "2024-01-01T00:02:00Z",
    ]


def test_window_file_is_loaded_as_a_private_copy(tmp_path: Path) -> None:
    path = tmp_path / "window.arrow"
    table = series_table(1000)
    write_ipc(table, path)
    frame = load_window(path)
    # The file is no longer mapped: the frame lives in this process's own memory.
    assert str(path) not in Path("/proc/self/maps").read_text()
    assert frame["demand_mw"].tolist() == table.column("demand_mw").to_pylist()


def test_seed_consumer_applies_kafka_events(
    model_path: Path, stack: StackHandle, kafka_topic: str
) -> None:
    first = int(pd.Timestamp("2024-01-01T00:00:00Z").value)
    events: list[bytes] = [event_record(i, first_ns=first) for i in range(5)]
    events.append(b"not json")
    events.append(b'{"time": "2024-01-01T00:01:00Z", "demand_mw": 7.5}')  # a correction
    stack.produce_json(kafka_topic, events)
    service = SeedService()
    service.start(
        BaselineConfig(
            model_path=model_path,
            bootstrap_servers=(stack.bootstrap_servers,),
            topic=kafka_topic,
            window_rows=4,
        )
    )
    try:
        deadline = time.monotonic() + 30
        while service.consumer is not None and service.consumer.events < 6:
            assert time.monotonic() < deadline, "the consumer thread did not apply the events"
            time.sleep(0.05)
        assert service.consumer is not None and service.consumer.bad_records == 1
        frame = service.frame_for_request()
        swaps = service.swap_log()["swaps"]
    finally:
        service.stop()
    # Each swap is logged with its instant (rising) and the newest event it made visible.
    assert swaps and swaps[-1][1] == first + 4 * STEP_NS
    assert [at for at, _ in swaps] == sorted(at for at, _ in swaps)
    # Bounded to the newest 4 rows, sorted, the correction applied (last value wins).
    times = frame["time"].astype("int64").tolist()
    assert times == [first + i * STEP_NS for i in range(1, 5)]
    assert frame["demand_mw"].iloc[0] == 7.5


def test_seed_server_answers_keep_alive_requests_without_delayed_acks(
    model_path: Path, tmp_path: Path
) -> None:
    """The seed design's server sets TCP_NODELAY as uvicorn does on a port it binds: behind
    ``uvicorn --fd`` each answer on a kept-alive connection waited for the client's delayed
    acknowledgement (>= 40 ms each, >= 4 s for these 100), see bench.baselines.uvicorn_fd."""
    window = tmp_path / "window.arrow"
    write_ipc(series_table(500), window)
    env = {"MODEL_PATH": str(model_path), "BASELINE_WINDOW_FILE": str(window)}
    server = servers.seed(env, tmp_path)
    try:
        server.wait_http("/healthz", timeout=60)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        start = time.monotonic()
        for _ in range(100):
            conn.request("GET", "/cache")
            response = conn.getresponse()
            assert response.status == 200 and b'"rows":500' in response.read()
        elapsed = time.monotonic() - start
        conn.close()
    finally:
        server.stop()
    assert elapsed < 2.0, f"100 keep-alive requests took {elapsed:.2f} s"


@pytest.fixture(scope="module")
def redis_server() -> str:
    """The ``redis-server`` binary; installed here the way ``make bench-redis`` does when this
    runs as root (CI does), else the test is skipped with the reason in the summary."""
    if find_redis_server() is None and os.geteuid() == 0:
        subprocess.run(["make", "--no-print-directory", "bench-redis"], cwd=ROOT, check=True)
    found = find_redis_server()
    if found is None:
        pytest.skip(f"{INSTALL_HINT}; not root, so the test cannot install it")
    return found


def test_redis_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BaselineUnavailableError, match="make bench-redis"):
        RedisServer()


def test_redis_cache_round_trip(redis_server: str) -> None:
    frame = series_table(1000).to_pandas()
    with RedisServer() as server, server.client() as client:
        cache = RedisWindowCache(client)
        assert cache.publish(frame) > frame.memory_usage().sum()
        pd.testing.assert_frame_equal(cache.latest(), frame)


def test_freshness_latency_is_the_last_worker_to_show_the_event() -> None:
    # Event 1 sent at t=10.0 with event time 100; worker 1 shows it at 10.02, worker 2 at
    # 10.05; event 2 (event time 200, sent at 11.0) is shown by worker 1 only. Each answer:
    # (arrival, pid, newest event, send time).
    samples = [
        (9.99, 1, 50, 9.985),
        (10.02, 1, 100, 10.015),
        (10.03, 2, 50, 10.025),
        (10.05, 2, 100, 10.045),
        (11.01, 1, 200, 11.005),
        (11.50, 2, 100, 11.495),
    ]
    result = _latencies([(10.0, 100), (11.0, 200)], samples, expected=2)
    assert result["workers_seen"] == 2
    assert result["missing"] == 1
    assert result["p50_ms"] == pytest.approx(50.0)
    assert result["spread_p50_ms"] == pytest.approx(30.0)
    # Worker 2's answer sent at 10.025 did not show event 1 yet: it was not visible in every
    # worker before 25 ms after it was sent.
    assert result["not_before_p50_ms"] == pytest.approx(25.0)


def test_freshness_lower_bound_is_zero_when_no_answer_after_the_event_missed_it() -> None:
    # Both workers' last answers without the event were sent before it was produced.
    samples = [
        (9.99, 1, 50, 9.98),
        (10.01, 1, 100, 10.004),
        (9.995, 2, 50, 9.99),
        (10.02, 2, 100, 10.012),
    ]
    result = _latencies([(10.0, 100)], samples, expected=2)
    assert result["not_before_p50_ms"] == 0.0
    assert result["p50_ms"] == pytest.approx(20.0)
    # The bounds always bracket the figure the goals judge.
    assert result["not_before_p50_ms"] <= result["p50_ms"]


@settings(max_examples=200, deadline=None)
@given(
    workers=st.lists(
        st.lists(
            st.tuples(
                st.floats(0.0005, 0.02),  # pause before the request
                st.floats(0.0001, 0.01),  # its round trip
                st.integers(0, 5),  # newest event it shows
            ),
            min_size=1,
            max_size=30,
        ),
        min_size=1,
        max_size=3,
    ),
    events=st.lists(st.tuples(st.floats(0.0, 0.3), st.integers(0, 5)), min_size=1, max_size=5),
)
def test_freshness_bounds_bracket_every_event(
    workers: list[list[tuple[float, float, int]]], events: list[tuple[float, int]]
) -> None:
    samples = []
    for pid, answers in enumerate(workers, start=1):
        clock = 0.0
        for pause, trip, newest in answers:
            sent = clock + pause
            clock = sent + trip
            samples.append((clock, pid, newest, sent))
    result = _latencies(sorted(events), samples, expected=len(workers))
    if "p50_ms" in result:
        assert 0.0 <= result["not_before_p50_ms"] <= result["p50_ms"]
        assert 0.0 <= result["not_before_p99_ms"] <= result["p99_ms"]


def test_visible_from_is_the_first_instant_showing_the_event() -> None:
    # A log in any order; the newest event shown never goes back (a later entry with an
    # older newest still shows what an earlier one did).
    log = [(2.0, 300), (1.0, 100), (1.5, 90), (3.0, 250)]
    assert _visible_from([(0.0, 100), (0.0, 101), (0.0, 300), (0.0, 301)], log) == [
        1.0,
        2.0,
        2.0,
        None,
    ]


def test_exact_freshness_is_the_last_process_and_the_probe_checks_it() -> None:
    # Event time 100 sent at t=10.0: process 1 shows it from 10.02, process 2 from 10.04.
    logs = {1: [(9.0, 50), (10.02, 100)], 2: [(9.5, 50), (10.04, 100)]}
    samples = [
        (10.031, 2, 50, 10.03),  # sent before process 2's instant: not a violation
        (10.051, 2, 100, 10.05),
        (10.061, 1, 100, 10.06),
    ]
    result = _exact([(10.0, 100)], logs, 2, samples)
    assert result["p50_ms"] == pytest.approx(40.0)
    assert (result["violations"], result["checked"], result["missing"]) == (0, 2, 0)
    # An answer to a request sent after the instant that still lacks the event: the instant
    # was too early, and the check says so.
    late = _exact([(10.0, 100)], logs, 2, [*samples, (10.071, 2, 50, 10.07)])
    assert (late["violations"], late["checked"]) == (1, 3)
    # A process that never showed it, or one missing from the logs: the event is missing.
    assert _exact([(10.0, 100)], {1: logs[1], 2: [(9.5, 50)]}, 2, samples)["missing"] == 1
    assert _exact([(10.0, 100)], {1: logs[1]}, 2, samples)["missing"] == 1


@settings(max_examples=200, deadline=None)
@given(
    delays=st.lists(st.floats(0.0, 0.05), min_size=1, max_size=3),
    polls=st.lists(
        st.tuples(
            st.floats(0.0005, 0.01),  # pause before the request
            st.floats(0.0001, 0.005),  # its round trip
            st.floats(0.0, 1.0),  # where in the round trip the process read its window
        ),
        min_size=1,
        max_size=40,
    ),
)
def test_exact_freshness_lies_between_the_probe_bounds(
    delays: list[float], polls: list[tuple[float, float, float]]
) -> None:
    # One event (time 100) sent at t=1.0; process p shows it from 1.0 + delays[p]. Each probe
    # answer shows what its process held when it read, somewhere within its round trip.
    logs = {pid: [(0.5, 50), (1.0 + delay, 100)] for pid, delay in enumerate(delays, start=1)}
    samples = []
    for pid, delay in enumerate(delays, start=1):
        clock = 0.99
        for pause, trip, where in polls:
            sent = clock + pause
            clock = sent + trip
            shown = 100 if sent + where * trip >= 1.0 + delay else 50
            samples.append((clock, pid, shown, sent))
    exact = _exact([(1.0, 100)], logs, len(delays), samples)
    assert exact["violations"] == 0
    # Figures are rounded to 0.1 ms.
    assert exact["p50_ms"] == pytest.approx(max(delays) * 1000, abs=0.051)
    probe = _latencies([(1.0, 100)], samples, expected=len(delays))
    if "p50_ms" in probe:
        assert probe["not_before_p50_ms"] <= exact["p50_ms"] + 0.1
        assert exact["p50_ms"] <= probe["p50_ms"] + 0.1
