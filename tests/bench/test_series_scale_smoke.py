"""The many-series benchmark runs end to end at tiny sizes and its figures have the right shape
(written to a temporary directory: a full ``make bench``'s ``bench/results/`` is never
touched)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import series_scale
from shm import segments_for


def test_tiny_series_scale_writes_sane_figures(tmp_path: Path) -> None:
    plot = tmp_path / "series-scale.png"
    argv = ["--quick", "--sizes", "50,600", "--publications", "3", "--results-dir", str(tmp_path)]
    assert series_scale.main([*argv, "--requests", "40", "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = json.loads((tmp_path / "series_scale.json").read_text())
    sizes = results["sizes"]
    assert [s["series"] for s in sizes] == [50, 600]
    for size in sizes:
        assert size["segments"] == segments_for(size["series"])
        assert size["window_rows"] == size["series"] * series_scale.QUICK_ROWS
        # Every segment file is named by one of the two kept manifests: the segments, plus
        # at most one per publication kept besides.
        assert size["segments"] <= size["segment_files"] <= size["segments"] + 1
        # Loose bounds, regressions only (the benchmark holds the goals): a lookup that
        # scanned or copied the window, a publication that rewrote it.
        assert 0 < size["lookup_us"] < 1_000
        assert 0 < size["publish_ms"] < 1_000
        assert size["pss_kib"] > 0 and size["pss_anon_kib"] > 0
        # Each row is 16 bytes of time and value; the ids, index and files add to that.
        assert size["shm_bytes_per_series"] > 16 * series_scale.QUICK_ROWS
        # The web service's way (view, catalog, memo) answers every lookup too.
        assert 0 < size["webapp_lookup_us"] < 10_000
        assert 0 < size["webapp_first_request_us"] < 100_000
        # Whole POST /predict requests through the application: a memo hit skips the
        # model, a miss runs it (the benchmark checks the memo's counters).
        assert 0 < size["request_hit_us"] < size["request_miss_us"] < 1_000_000
        assert size["request_memo_series"] == 10  # a quarter of the 40 series asked for
        assert size["request_pss_kib"] > 0
    assert set(results["verdicts"]) >= {
        "publish_ms_ratio",
        "first_request_us_ratio",
        "lookup_us_ratio",
        "webapp_first_request_us_ratio",
        "request_hit_us_ratio",
        "request_miss_us_ratio",
    }
