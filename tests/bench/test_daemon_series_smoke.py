"""The daemon-side many-series benchmark runs end to end at a tiny size (written to a temporary
directory)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import daemon_series


def test_tiny_daemon_series_writes_sane_figures(tmp_path: Path) -> None:
    argv = ["--quick", "--changed", "1,5"]
    assert daemon_series.main([*argv, "--results-dir", str(tmp_path)]) == 0
    (size,) = json.loads((tmp_path / "daemon_series.json").read_text())["sizes"]
    assert size["series"] == 300 and size["segments"] == 8
    # Loose bounds, regressions only: a write that rewrote every segment for one change
    # would still pass here; tests/daemon/test_writer.py checks which files are written.
    for key in ("write_ms_1", "write_ms_5", "ms_per_changed_segment_1"):
        assert 0 < size[key] < 1_000
    assert size["rss_bytes_per_series"] > 0
