"""The shard-routing benchmark runs end to end and its figures have the right shape (written
to a temporary directory)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import sharding


def test_quick_sharding_writes_sane_figures(tmp_path: Path) -> None:
    assert sharding.main(["--quick", "--results-dir", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "sharding.json").read_text())["results"]
    assert set(results["partition_of_us"]) == {"16_bytes", "128_bytes"}
    for case in ("window", "caller_1000_rows"):
        figures = results[case]
        assert figures["route_us"] > 0 and figures["read_predict_us"] > 0
    # Loose: the routing decode skips the rows the worker's own decode must read, so on a
    # large body it is a fraction of that decode (measured: under a tenth).
    assert results["caller_1000_rows"]["route_over_read_predict"] < 0.5
