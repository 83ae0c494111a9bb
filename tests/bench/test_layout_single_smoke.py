"""The single-series layout benchmark runs end to end at a tiny size and reports both layouts
(written to a temporary directory)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import layout_single


def test_tiny_layout_single_writes_both_layouts(tmp_path: Path) -> None:
    argv = ["--quick", "--results-dir", str(tmp_path)]
    assert layout_single.main(argv) == 0
    sizes = json.loads((tmp_path / "layout_single.json").read_text())["sizes"]
    assert [(s["rows"], s["layout"]) for s in sizes] == [(500, "inline"), (500, "segmented")]
    for size in sizes:
        # Loose bounds, regressions only: a write or a first request that took seconds.
        assert 0 < size["write_ms"] < 1_000
        assert 0 < size["first_request_us"] < 1_000_000
