"""``locust -f locustfiles`` headless against the real service: Gunicorn with three workers and
the daemon publishing (replay source), all on loopback, bounded in users and time.

The main run must pass the gates (no failure, a p99 within a bound measured on the same
service just before the run, data never stale); the real latency targets live in the
benchmark. The other runs
show that a failed gate sets exit code 1 with a line saying which gate and by how much, and
that a refused preflight stops the run with exit code 2 before any load.
"""

from __future__ import annotations

import csv
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.sample_window import sample_table
from tests.locust._service import LiveService, live_service, run_locust
from tests.webapp._support import GunicornServer, new_shm_window, remove_tree, train_artifact

pytestmark = [pytest.mark.concurrency, pytest.mark.slow]

USERS = 20
# The p99 gate: USERS requests in flight, each served no slower than HEADROOM times the idle
# median of a cached forecast measured on this service just before the run. HEADROOM covers
# what the mix adds (model runs for caller data), Locust's own share of the two cores, and
# other jobs starting on the machine during the run (load average 10+). Measured on a quiet
# 2-core machine: p99 62-70 ms against bounds of 300-570 ms. A service that serialises or
# stalls requests under concurrency exceeds it; the former fixed 1,500 ms let those through.
HEADROOM = 15
IDLE_SAMPLES = 50


@pytest.fixture(scope="module")
def service() -> Iterator[LiveService]:
    with live_service(workers=3) as live:
        yield live


def stats_rows(prefix: Path) -> dict[str, dict[str, str]]:
    with Path(f"{prefix}_stats.csv").open(newline="") as fh:
        return {row["Name"]: row for row in csv.DictReader(fh)}


def test_the_seed_reports_bug_shape_gets_a_clear_422_from_the_server(service):
    stamps = ["2018-02-06T00:00:00"] * 400  # the seed report's payload: one timestamp, 400 rows
    body = {"index_col": "time", "data": {"time": stamps, "demand_mw": [1.0] * 400}}
    reply = service.web.post_json("/predict", body)
    assert reply.status == 422
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["status"] == 422
    assert [e["code"] for e in problem["errors"]] == ["duplicate_timestamps"]
    assert (
        "399 duplicate timestamp(s); 2018-02-06T00:00:00Z appears at rows 0 and 1"
        in (problem["detail"])
    )


def idle_median_ms(service: LiveService) -> float:
    """The median latency of ``POST /predict {}``, one request at a time."""
    for _ in range(5):  # warm every worker's connection path
        service.web.post_json("/predict", {})
    samples = []
    for _ in range(IDLE_SAMPLES):
        started = time.perf_counter()
        reply = service.web.post_json("/predict", {})
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status == 200, reply.body
    return statistics.median(samples)


def test_twenty_users_pass_the_gates_against_the_live_service(service, tmp_path):
    p99_bound_ms = USERS * idle_median_ms(service) * HEADROOM
    before = service.generation()
    prefix = tmp_path / "run"
    done = run_locust(
        service.url,
        {
            "LOCUST_SEED": "7",
            "LOCUST_MAX_FAIL_RATIO": "0",
            "LOCUST_P99_MS": f"{p99_bound_ms:.0f}",
            "LOCUST_MAX_DATA_AGE_MS": "10000",
        },
        "--csv",
        str(prefix),
        "--html",
        str(tmp_path / "run.html"),
        users=USERS,
        seconds=15,
    )
    log = done.stderr
    assert done.returncode == 0, f"p99 bound {p99_bound_ms:.0f} ms\n{log[-4000:]}"
    assert "preflight passed" in log
    assert "SLO gate ok: p99 latency" in log and "SLO gates: all 4 passed" in log
    rows = stats_rows(prefix)
    assert rows["Aggregated"]["Failure Count"] == "0"
    for name in ("cached {}", "cached k", "synthetic", "real"):
        row = rows[f"/predict {name}"]
        assert int(row["Request Count"]) > 0 and row["Failure Count"] == "0", row
    bad = {n: r for n, r in rows.items() if n.startswith("/predict bad:")}
    assert len(bad) >= 5 and all(r["Failure Count"] == "0" for r in bad.values())
    assert Path(f"{prefix}_failures.csv").read_text().count("\n") == 1  # the header only
    assert "Locust" in (tmp_path / "run.html").read_text()
    assert service.generation() > before  # the daemon kept publishing under load


def test_a_failed_gate_exits_1_naming_the_gate_and_the_excess(service):
    done = run_locust(
        service.url,
        {"LOCUST_WEIGHT_CACHED": "0", "LOCUST_P99_MS": "0", "LOCUST_MIN_RPS": "1000000"},
        *("--shape", "ramp", "CachedUser"),  # a class named on the command line runs alone
        users=2,
        seconds=3,
    )
    log = done.stderr
    assert done.returncode == 1, log[-3000:]
    assert (
        "modes cached=1 synthetic=0 real=0 bad=0 ingest=0 series=0 quantiles=0, shape ramp" in log
    )
    # p99, not p50: a cached answer can take under half a millisecond, a p50 of 0 ms.
    assert "SLO gate FAILED: p99 latency" in log and "(LOCUST_P99_MS) by " in log
    assert "< 1000000 req/s (LOCUST_MIN_RPS) by " in log and "%)" in log
    assert "SLO gate ok: failure ratio 0 <= 0 (LOCUST_MAX_FAIL_RATIO)" in log
    assert "SLO gates: 2 of 4 failed" in log


def test_the_series_mode_asks_for_random_series_of_a_window_of_many(tmp_path):
    """A window of 30 series (published as the daemon does, no daemon): the series user
    reads their ids from GET /series and each answer must name the series it asked for."""
    window, parent = new_shm_window(train_artifact())
    ids = [f"meter:{i:02d}" for i in range(30)]
    window.publish_series({sid: sample_table(400, end=400 + 50 * i) for i, sid in enumerate(ids)})
    window.write_status()
    server = GunicornServer({"SHM_DIR": str(window.directory), "MAX_DATA_AGE_MS": "600000"})
    try:
        server.wait_ready()
        prefix = tmp_path / "series"
        done = run_locust(
            f"http://127.0.0.1:{server.port}",
            {"LOCUST_SEED": "3", "LOCUST_SERIES_MAX": "25", "LOCUST_MAX_DATA_AGE_MS": "600000"},
            *("--csv", str(prefix), "KeyedUser"),
            users=4,
            seconds=4,
        )
    finally:
        server.stop()
        window.close()
        remove_tree(parent)
    log = done.stderr
    assert done.returncode == 0, log[-4000:]
    assert "series: 25 series ids read from GET /series" in log and "series=1" in log
    row = stats_rows(prefix)["/predict series"]
    assert int(row["Request Count"]) > 0 and row["Failure Count"] == "0", row


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"LOCUST_ROWS_MIN": "10", "LOCUST_ROWS_MAX": "12"},
            "the model needs at least 336 rows of history, got 10",
        ),
        ({"LOCUST_STEP_S": "900"}, "LOCUST_STEP_S=900 but the model forecasts every 1800 s"),
    ],
)
def test_a_refused_preflight_stops_the_run_before_any_load(service, tmp_path, env, words):
    prefix = tmp_path / "refused"
    only_synthetic = ("--weight-cached", "0", "--weight-real", "0", "--weight-bad", "0")
    done = run_locust(service.url, env, "--csv", str(prefix), *only_synthetic, users=4, seconds=10)
    log = done.stderr
    assert done.returncode == 2, log[-3000:]
    assert "no load was applied: the preflight failed" in log and words in log
    assert "modes cached=0 synthetic=2 real=0 bad=0" in log
    assert stats_rows(prefix)["Aggregated"]["Request Count"] == "0"


def test_no_service_is_a_clear_preflight_failure():
    url = f"http://127.0.0.1:{closed_port()}"
    done = run_locust(url, {"LOCUST_READY_TIMEOUT_S": "0.5"}, users=1, seconds=10)
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"the service at {url} is not ready after 0.5 s: no answer" in done.stderr


def test_a_bad_variable_exits_2_naming_it(service):
    done = run_locust(service.url, {"LOCUST_P99_MS": "soon"}, users=1, seconds=1)
    assert done.returncode == 2
    assert "configuration error: LOCUST_P99_MS must be a number, got 'soon'" in done.stderr


def test_ramp_and_spike_need_a_run_time(service):
    done = run_locust(service.url, {}, "--shape", "spike", users=1, seconds=None)
    assert done.returncode == 2
    assert "the spike shape needs a run time (-t / --run-time)" in done.stderr
