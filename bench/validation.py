"""Validation cost benchmark: what a hostile ``/predict`` body costs a worker, per megabyte.

``python -m bench.validation [--quick]`` prints a table and writes
``bench/results/validation.json``. Each body family is filled to the same size (1 MB; 256 KB
with ``--quick``) and timed through what a worker does with a body before any model runs:
``read_predict`` (the one-pass decode of a valid body, else a shallow decode and
``parse_predict``), with the default limits (10,000 rows, a model that
needs 336). The reference is the costliest *valid* body of that size (every row used, long
time and value literals, blank padding); the figure of merit is the worst family's CPU time
per megabyte and its ratio to that reference.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from threadpoolctl import threadpool_limits

from bench._common import write_results
from webapp.errors import ProblemError
from webapp.predict_body import read_predict
from webapp.validation import Expectations

__all__ = ["EXPECT", "FAMILIES", "cpu_ms", "main", "valid_body"]

MB = 1_000_000
STEP_S = 1800
EXPECT = Expectations(
    columns=("demand_mw",),
    min_rows=336,
    step_ns=STEP_S * 1_000_000_000,
    max_rows=10_000,
    max_inference_length=48,
    default_inference_length=1,
    max_gap_steps=0,
)
_START = 962_409_600  # 2000-07-01T00:00:00Z


def _times(rows: int) -> list[str]:
    return [
        time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime(_START + STEP_S * i))
        for i in range(rows)
    ]


def _series(rows: int) -> dict[str, list[Any]]:
    return {"time": _times(rows), "demand_mw": [30_000.123456789012 + i for i in range(rows)]}


def _fill(head: bytes, item: bytes, tail: bytes, size: int) -> bytes:
    """``head item,item,... tail`` with as many items as fit in ``size`` bytes."""
    count = max(1, (size - len(head) - len(tail)) // (len(item) + 1))
    return head + b",".join([item] * count) + tail


def _keyed(head: bytes, tail: bytes, size: int) -> bytes:
    parts: list[bytes] = []
    used = len(head) + len(tail)
    i = 0
    while used < size:
        part = b'"%x":0' % i
        parts.append(part)
        used += len(part) + 1
        i += 1
    return head + b",".join(parts) + tail


def valid_body(size: int) -> bytes:
    """The costliest valid body that fits in ``size`` bytes, padded with blanks to it."""
    rows = EXPECT.max_rows
    while True:
        body = json.dumps({"index_col": "time", "data": _series(rows), "inference_length": 48})
        if len(body) <= size:
            return body.encode() + b" " * (size - len(body))
        rows = rows * 9 // 10


def _valid_head() -> bytes:
    return json.dumps({"index_col": "time", "data": _series(EXPECT.min_rows)})[:-2].encode()


def _deep_rows(size: int) -> bytes:
    # Every row an array nested 900 deep: the depth just under the decoder's limit.
    item = b"[" * 900 + b"]" * 900
    rows = min(EXPECT.max_rows, max(EXPECT.min_rows, size // (len(item) + 1)))
    items = b",".join([item] * rows)
    return b'{"data":{"time":[' + items + b'],"demand_mw":[' + b",".join([b"1"] * rows) + b"]}}"


FAMILIES: dict[str, Callable[[int], bytes]] = {
    "unknown_top_level_keys": lambda size: _keyed(b"{", b"}", size),
    "unknown_keys_under_data": lambda size: _keyed(_valid_head() + b",", b"}}", size),
    "empty_objects": lambda size: _fill(b'{"x":[', b"{}", b"]}", size),
    "empty_arrays": lambda size: _fill(b'{"x":[', b"[]", b"]}", size),
    "small_integers": lambda size: _fill(b'{"x":[', b"0", b"]}", size),
    "one_key_objects": lambda size: _fill(b'{"x":[', b'{"a":0}', b"]}", size),
    "deep_arrays_as_rows": _deep_rows,
    "integers_of_4300_digits": lambda size: _fill(b'{"x":[', b"9" * 4300, b"]}", size),
    "one_long_float": lambda size: b'{"x":0.' + b"1" * (size - 9) + b"}",
    "escaped_strings": lambda size: _fill(b'{"x":[', b'"\\u00e9\\n"', b"]}", size),
    "nan_values": lambda size: json.dumps(
        {"data": {"time": _times(EXPECT.max_rows), "demand_mw": [float("nan")] * EXPECT.max_rows}}
    ).encode(),
    "unparseable_times": lambda size: json.dumps(
        {"data": {"time": ["2000-07-01T00:00:00.000000+99:99"] * 10_000, "demand_mw": [1] * 10_000}}
    ).encode(),
}


def _handle(raw: bytes) -> int:
    try:
        read_predict(raw, EXPECT)
    except ProblemError as exc:
        return exc.status
    return 200


def cpu_ms(raw: bytes, repeats: int) -> tuple[float, int]:
    """Least CPU time (ms) of ``repeats`` decode + validate runs of ``raw``, and the status.
    BLAS runs on one thread, as in a worker (``WEB_BLAS_THREADS``)."""
    best = float("inf")
    status = 0
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            start = time.process_time()
            status = _handle(raw)
            best = min(best, time.process_time() - start)
    return best * 1000, status


def measure(size: int, repeats: int) -> dict[str, Any]:
    """Every family at ``size`` bytes against the valid reference, timed before and after
    the families (the lesser time counts, so a busy moment cannot flatter the ratios)."""
    valid = valid_body(size)
    first_ms, status = cpu_ms(valid, repeats)
    assert status == 200, "the reference body must be valid"
    timed = {}
    for name, build in FAMILIES.items():
        raw = build(size)
        timed[name] = (len(raw), *cpu_ms(raw, repeats))
    valid_ms = min(first_ms, cpu_ms(valid, repeats)[0])
    families = {
        name: {
            "bytes": length,
            "status": status,
            "cpu_ms": round(ms, 3),
            "ms_per_mb": round(ms * MB / length, 2),
            "ratio_to_valid": round((ms / length) / (valid_ms / len(valid)), 2),
        }
        for name, (length, ms, status) in timed.items()
    }
    worst = max(families, key=lambda n: families[n]["ms_per_mb"])
    return {
        "size": size,
        "valid": {"bytes": len(valid), "cpu_ms": round(valid_ms, 3)},
        "valid_ms_per_mb": round(valid_ms * MB / len(valid), 2),
        "families": families,
        "worst": worst,
        "worst_ms_per_mb": families[worst]["ms_per_mb"],
        "worst_ratio_to_valid": families[worst]["ratio_to_valid"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 KB bodies, fewer repeats")
    args = parser.parse_args(argv)
    size, repeats = (256_000, 2) if args.quick else (MB, 5)
    result = measure(size, repeats)
    print(f"{'body':<28} {'status':>6} {'ms/MB':>9} {'x valid':>8}   (CPU, least of {repeats})")
    print(f"{'valid (reference)':<28} {200:>6} {result['valid_ms_per_mb']:>9.1f} {1.0:>8.2f}")
    for name, row in result["families"].items():
        print(
            f"{name:<28} {row['status']:>6} {row['ms_per_mb']:>9.1f} {row['ratio_to_valid']:>8.2f}"
        )
    print(
        f"worst: {result['worst']} {result['worst_ms_per_mb']:.1f} ms/MB,"
        f" {result['worst_ratio_to_valid']:.2f}x the valid body"
    )
    path = write_results("validation", {"quick": args.quick, **result})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
