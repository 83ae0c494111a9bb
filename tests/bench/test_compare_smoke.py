"""``python -m bench.compare --quick`` runs end to end and its figures have the right shape.

Quick sizes cannot check the goals (they are for 10 M rows, 1 GiB, 8 workers); these
assertions catch a broken comparison instead: a design whose figures are missing or
nonsensical, ours paying per request what only a copy should, workers that do not share the
window, a server that fails requests, an event that never reaches every worker. Results go to
a temporary directory (``--results-dir``): a full ``make bench``'s ``bench/results/`` is never
touched.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from pathlib import Path

import pytest

from bench import compare
from bench._locust import Locust
from bench._series import train_model
from bench._wrk import missing
from bench.compare import freshness, goals, plots, report
from bench.compare.http import _merge
from tests._stack import StackHandle


def test_quick_compare_writes_sane_figures(tmp_path: Path) -> None:
    assert compare.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "compare.json").read_text())
    assert results["quick"] is True
    assert {"machine", "load_average", "goals"} <= results.keys()

    read = results["readpath"]
    assert read["sizes"] == compare.QUICK.read_sizes
    for design in ("ours", "ours_new_generation", "seed", "private"):
        assert len(read["us"][design]) == len(read["sizes"])
        assert all(v > 0 for v in read["us"][design])
    redis = read["us"]["redis"]
    assert all(v is None for v in redis) == ("redis" in read["skipped_designs"])
    # Unchanged generation: a memory load, whatever the size; the deep copy grows with rows.
    assert max(read["us"]["ours"]) < 100
    assert read["us"]["ours"][-1] < read["us"]["seed"][-1]
    assert read["us"]["seed"][-1] > read["us"]["seed"][0]

    memory = results["memory"]
    ours, private = memory["ours"][0], memory["private"][0]
    assert ours["workers"] == private["workers"] == 2
    assert len(ours["per_worker_mib"]) == len(private["per_worker_mib"]) == 2
    # Two private copies against one shared: about one window more (half counts as slack).
    assert private["total_mib"] - ours["total_mib"] > 0.5 * memory["window_mib"]

    http = results["http"]
    designs = {(run["design"], run["rows"], run["users"]) for run in http["runs"]}
    assert designs == {("ours", 50, 20), ("seed", 50, 20)}
    for run in http["runs"]:
        assert run["requests"] > 0
        assert run["failures"] == 0
        assert 0 < run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"]
        assert 0 < run["locust_cpu_share"] <= 1 and run["locust_cpu_s"] > 0
    # wrk's ceilings next to Locust's figures, or why they are missing.
    ceilings = http["wrk"]
    if missing() is None:
        assert {(r["design"], r["rows"], r["users"]) for r in ceilings["runs"]} == designs
        for run in ceilings["runs"]:
            assert run["requests"] > 0 and run["rps"] > 0, run
            assert run["non_2xx"] == 0 and run["socket_errors"] == 0, run
            assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"], run
            assert run["connections"] == run["users"] == 20
    else:
        assert "make bench-tools" in ceilings["skipped"]

    # The load test's default mix, then cached-only, both with every answer checked.
    mix = results["mix"]
    for run in ("mix", "cached"):
        figures = mix[run]
        assert figures["http_requests"] > 0 and figures["failures"] == 0, figures
        assert figures["exit_code"] == 0, figures
        assert 0 < figures["locust_cpu_share"] <= 1, figures
        assert figures["command"].startswith("LOCUST_SEED=7 locust -f locustfiles --headless -u 20")
    assert mix["cached"]["command"].endswith(" CachedUser")
    assert mix["mix_over_cached"] == pytest.approx(
        mix["mix"]["rps"] / mix["cached"]["rps"], abs=1e-3
    )

    # Without a broker the freshness part says why it did not run (measured in the test below).
    assert "no broker" in results["freshness"]["skipped"]
    for goal in results["goals"]:
        assert {"goal", "target", "measured", "met"} == goal.keys()
    named = {goal["goal"]: goal for goal in results["goals"]}
    mix_goals = [g for name, g in named.items() if name.startswith("load-test")]
    assert len(mix_goals) == 2 and all(g["met"] is not None for g in mix_goals)
    assert "--headless -u 20 -r 20" in mix_goals[0]["goal"]

    for part in ("readpath", "memory", "http"):
        png = (tmp_path / f"compare-{part}.png").read_bytes()
        assert png.startswith(b"\x89PNG")


@pytest.mark.timeout(600)
def test_freshness_of_ours_against_a_real_broker(stack: StackHandle) -> None:
    """The freshness part on the session's Kafka, short and for ours and the seed design
    (the full run measures the private caches too): every event produced reaches every
    worker, and each design's exact instants pass the probe's check, alone and side by
    side."""
    # The daemon's shm directory lives under the work directory, as in bench.compare.
    workdir = Path(tempfile.mkdtemp(prefix="bench-fresh-test-", dir="/dev/shm"))
    try:
        logdir = workdir / "logs"
        logdir.mkdir()
        model = train_model(workdir)
        fresh = freshness.measure(
            stack.bootstrap_servers,
            model,
            workdir,
            logdir,
            seconds=2.0,
            rate=20.0,
            users=5,
            initial=500,
            designs=("ours", "seed"),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    assert set(fresh["designs"]) == {"ours", "seed"}
    for design, phases in fresh["designs"].items():
        for phase in ("idle", "load"):
            figures, exact = phases[phase], phases[phase]["exact"]
            where = f"{design} {phase}: {exact}"
            # No probe answer to a request sent after an event's instant lacked the event, and
            # the probe asked after most of them.
            assert exact["violations"] == 0 and exact["checked"] > 0, where
            assert exact["missing"] <= (0 if phase == "idle" else 10), where
            assert 0 < exact["p50_ms"] <= exact["p99_ms"] <= exact["max_ms"] < 10_000, where
            # The probe's bounds bracket it (its figures are rounded to 0.1 ms).
            if "p50_ms" in figures and not figures["missing"] and not exact["missing"]:
                assert figures["not_before_p50_ms"] <= exact["p50_ms"] + 0.1, where
                assert exact["p50_ms"] <= figures["p50_ms"] + 0.1, where
    ours = fresh["designs"]["ours"]
    for phase in ("idle", "load"):
        figures = ours[phase]
        where = f"{phase}: {figures}"
        assert figures["events"] == 40, where
        assert figures["workers_seen"] == figures["workers_expected"] == ours["workers"], where
        # The phase ends 1.5 s after the last event: idle, every worker has shown every event.
        assert figures["missing"] <= (0 if phase == "idle" else 10), where
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"] < 10_000, where
        # The lower bound: some worker still answered without the event until then.
        assert 0 <= figures["not_before_p50_ms"] <= figures["p50_ms"], where
        assert figures["not_before_p50_ms"] <= figures["not_before_p99_ms"], where
        assert figures["kafka_alone"]["received"] == 40, where
        assert figures["published"]["missing"] == 0, where
        # One kept-alive probe connection per worker: each worker answered it all along.
        per_worker = figures["per_worker"]
        assert len(per_worker) == ours["workers"], where
        assert all(w["answers"] > 10 and w["connections"] >= 1 for w in per_worker.values())
    assert ours["load"]["load"]["requests"] > 0
    # Side by side, idle: both designs on the same events, judged against the same consumer.
    side = fresh["side_by_side"]["idle"]
    for design in ("ours", "seed"):
        figures, exact = side[design], side[design]["exact"]
        where = f"{design} side by side: {exact}"
        assert (
            figures["events"] == 40
            and figures["workers_seen"] == fresh["designs"][design]["workers"]
        ), where
        assert exact["violations"] == 0 and exact["checked"] > 0 and exact["missing"] == 0, where
        assert 0 < exact["p50_ms"] <= exact["p99_ms"] < 10_000, where
    assert side["ours"]["kafka_alone"] is side["seed"]["kafka_alone"]
    assert side["ours"]["kafka_alone"]["received"] == 40
    paired = side["paired"]
    assert paired["events"] == 40, paired
    assert 0 <= paired["ours_not_later_share"] <= 1, paired
    assert paired["ours_minus_seed_p50_ms"] <= paired["ours_minus_seed_p99_ms"], paired


def test_a_locust_phase_without_an_answer_is_a_result_the_report_shows(tmp_path: Path) -> None:
    """A server that answers nothing within a phase (the seed design at 10 M rows once did
    not) gives a recorded run, "no answer within N s", in the goals, the Markdown and the
    plot, instead of stopping the benchmark."""
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)  # accepts, never answers
    try:
        empty = Locust(silent.getsockname()[1], 2, 1, tmp_path, "silent").result()
    finally:
        silent.close()
    assert empty["requests"] == 0 and empty["rps"] == 0.0, empty
    assert empty["p50_ms"] is None and empty["p99_ms"] is None, empty
    assert empty["no_answer_within_s"] == 1, empty
    empty["users"] = 20  # as in the goals' runs
    answered = {
        **empty,
        "requests": 500,
        "rps": 100.0,
        "avg_ms": 9.0,
        "p50_ms": 8.0,
        "p95_ms": 15.0,
        "p99_ms": 18.0,
        "max_ms": 30.0,
        "no_answer_within_s": None,
        "locust_cpu_ms_per_request": 0.5,
    }
    raw = [
        {"design": design, "rows": 10_000_000, "rep": rep, **run}
        for rep in range(2)
        for design, run in (("ours", answered), ("seed", empty))
    ]
    runs, ratios = _merge(raw)
    seed = next(r for r in runs if r["design"] == "seed")
    assert seed["requests"] == 0 and seed["no_answer_within_s"] == 1 and seed["p99_ms"] is None
    # ours / seed throughput: none when the seed design completed nothing.
    assert ratios == {"10000000": {"20": None}}
    http = {
        "sizes": [10_000_000],
        "users": [20],
        "runs": runs,
        "throughput_ratio": ratios,
        "wrk": {"skipped": "not in this test"},
    }
    results = {"http": http}
    results["goals"] = goals.check(results)
    text = report.markdown(results)
    assert "| 10,000,000 | 20 | 100 | 8 / 15 / 18 | 0.0 | no answer within 1 s | - |" in text
    named = {goal["goal"]: goal for goal in results["goals"]}
    p99 = named["/predict p99, 10,000,000 rows, 20 users"]
    assert p99["measured"] == "18 ms (seed: no answer within 1 s)", p99
    throughput = named["/predict throughput vs seed, 10,000,000 rows, 20 users"]
    assert throughput["measured"] == "100 req/s vs seed: no answer within 1 s", throughput
    png = plots.plot_http(http, tmp_path / "http.png").read_bytes()
    assert png.startswith(b"\x89PNG")
