"""``python -m bench.compare --quick`` runs end to end and its figures have the right shape.

Quick sizes cannot check the goals (they are for 10 M rows, 1 GiB, 8 workers); these
assertions catch a broken comparison instead: a design whose figures are missing or
nonsensical, ours paying per request what only a copy should, workers that do not share the
window, a server that fails requests.
"""

from __future__ import annotations

import json

from bench import compare
from bench._common import RESULTS_DIR


def test_quick_compare_writes_sane_figures() -> None:
    assert compare.main(["--quick"]) == 0
    results = json.loads((RESULTS_DIR / "compare.json").read_text())
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

    assert "no broker" in results["freshness"]["skipped"]
    for goal in results["goals"]:
        assert {"goal", "target", "measured", "met"} == goal.keys()

    for part in ("readpath", "memory", "http"):
        png = (RESULTS_DIR / f"compare-{part}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
