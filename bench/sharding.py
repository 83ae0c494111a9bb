"""What shard routing costs a worker per ``POST /predict`` (``webapp.shard_route``).

``python -m bench.sharding [--quick]`` prints a table and writes
``bench/results/sharding.json``. A sharded pod reads the body's ``series_id`` (a decode that
skips every other field) and computes its partition (kafka-python's murmur2) before the view
does anything else. Both are timed on their own, on a window request and on a caller's
1,000-row series, against what the worker does with that body anyway: ``read_predict``, the
one-pass decode and validation (the ratio is the routing's share).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from bench._common import add_results_dir_option, median_us, time_call, write_results
from bench.validation import EXPECT, _series
from contract.partitioner import partition_of
from webapp.predict_body import read_predict
from webapp.shard_route import series_id_in

__all__ = ["main"]

PARTITIONS = 12


def _bodies() -> dict[str, tuple[bytes, bytes]]:
    """Per case: the body with ``series_id``, and the same body without it (what a worker
    decodes anyway)."""
    window: dict[str, Any] = {"inference_length": 4}
    caller: dict[str, Any] = {"index_col": "time", "data": _series(1000), "inference_length": 4}
    sid = {"series_id": "store-0042/sku-000317"}
    return {
        name: (json.dumps(sid | body).encode(), json.dumps(body).encode())
        for name, body in (("window", window), ("caller_1000_rows", caller))
    }


def _us(fn: Callable[[], object], quick: bool) -> float:
    return round(median_us(time_call(fn, min_repeats=50, budget_s=0.2 if quick else 1.5)), 2)


def _route(body: bytes) -> int:
    return partition_of(series_id_in(body) or "", PARTITIONS)


def measure(quick: bool) -> dict[str, Any]:
    """Median microseconds of each step, and routing's share per body."""
    ids = {"16_bytes": "x" * 16, "128_bytes": "x" * 128}
    out: dict[str, Any] = {
        "partition_of_us": {
            name: _us(partial(partition_of, sid, PARTITIONS), quick) for name, sid in ids.items()
        }
    }
    for name, (routed, plain) in _bodies().items():
        route = _us(partial(_route, routed), quick)
        decode = _us(partial(read_predict, plain, EXPECT), quick)
        out[name] = {
            "bytes": len(routed),
            "route_us": route,
            "read_predict_us": decode,
            "route_over_read_predict": round(route / decode, 3),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sharding", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short budgets")
    add_results_dir_option(parser)
    args = parser.parse_args(argv)
    results = measure(args.quick)
    for key, value in results.items():
        print(f"{key:>18}: {value}")
    path = write_results("sharding", {"results": results, "quick": args.quick}, args.results_dir)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
