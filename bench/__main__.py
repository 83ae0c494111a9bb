"""``python -m bench [--quick] [NAME ...]``: run the benchmarks in order, stop at the first failure.

Each benchmark is a module of this package with ``main(argv) -> int``; results go to
``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

BENCHMARKS = [
    "readpath",
    "series_scale",
    "daemon_series",
    "layout_single",
    "validation",
    "decode",
    "latency",
    "follower_idle",
    "ingest",
    "sharding",
    "http",
    "compare",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes and budgets")
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {BENCHMARKS}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    names = args.names or [n for n in BENCHMARKS if importlib.util.find_spec(f"bench.{n}")]
    for name in names:
        print(f"== bench.{name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        code = int(module.main(["--quick"] if args.quick else []))
        if code:
            print(f"bench.{name} failed with exit code {code}", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
