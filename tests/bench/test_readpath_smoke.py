"""The read-path benchmark runs end to end and its figures have the right shape (written to a
temporary directory: a full ``make bench``'s ``bench/results/`` is never touched)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import readpath


def test_quick_readpath_writes_sane_figures(tmp_path: Path) -> None:
    assert readpath.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "readpath.json").read_text())
    sizes = results["sizes"]
    assert [s["rows"] for s in sizes] == readpath.QUICK_SIZES
    for size in sizes:
        # Loose bounds: the benchmark holds the real targets, the test only catches regressions
        # such as a per-request copy (which would scale with rows) or a per-request directory scan.
        assert 0 < size["shm_unchanged_us"] < 100
    largest = sizes[-1]
    assert largest["deep_copy_locked_us"] > largest["shm_unchanged_us"]
