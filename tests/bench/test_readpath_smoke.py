"""The read-path benchmark runs end to end and its figures have the right shape."""

from __future__ import annotations

import json

from bench import readpath
from bench._common import RESULTS_DIR


def test_quick_readpath_writes_sane_figures() -> None:
    assert readpath.main(["--quick"]) == 0
    results = json.loads((RESULTS_DIR / "readpath.json").read_text())
    sizes = results["sizes"]
    assert [s["rows"] for s in sizes] == readpath.QUICK_SIZES
    for size in sizes:
        # Loose bounds: the benchmark holds the real targets, the test only catches regressions
        # such as a per-request copy (which would scale with rows) or a per-request directory scan.
        assert 0 < size["shm_unchanged_us"] < 100
    largest = sizes[-1]
    assert largest["deep_copy_locked_us"] > largest["shm_unchanged_us"]
