"""Decode + validate cost of a caller's ``/predict`` body, per schema library.

``python -m bench.decode [--quick] [--rows N ...]`` prints, for bodies of N rows (default
336, 1,000 and 3,000; ISO-8601 times with ``Z``, float values), the least CPU time of

* ``stdlib``: :func:`webapp.validation.decode_json` (``json.loads`` with a duplicate-key
  hook) then :func:`webapp.validation.parse_predict` (the precise path);
* ``msgspec``: one typed decode into :class:`webapp.schemas.PredictBody` and the vectorised
  columns (:func:`webapp.predict_body.read_predict`, what the server runs);
* ``pydantic``: the same body as a strict pydantic v2 model (``model_validate_json``), then
  the same vectorised columns and series checks, for comparison;
* ``json+columns``: ``json.loads`` alone then the same vectorised columns (what a faster
  JSON parser alone could save).

and, for the typed decode step alone (JSON text to checked Python values, before the columns
become arrays), ``json.loads`` with the duplicate-key hook, msgspec's ``Decoder(PredictBody)``
and pydantic's ``model_validate_json``. Writes ``bench/results/decode.json``. Every
candidate must return the same series.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from threadpoolctl import threadpool_limits

from bench._common import write_results
from bench.validation import _START, EXPECT, STEP_S
from forecasting.features import FloatArray, IntArray
from webapp.isotimes import parse_uniform
from webapp.predict_body import read_predict
from webapp.schemas import PredictBody
from webapp.validation import decode_json, parse_predict, regular_series

__all__ = ["CANDIDATES", "DECODERS", "body", "main", "measure"]


def body(rows: int) -> bytes:
    """A caller's body of ``rows`` rows, as a client library writes it."""
    times = [
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(_START + STEP_S * i)) for i in range(rows)
    ]
    values = [30_000.0 + 1_000.0 * np.sin(i / 7) for i in range(rows)]
    data = {"time": times, "demand_mw": values}
    return json.dumps({"index_col": "time", "data": data, "inference_length": 48}).encode()


class _PydanticBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    inference_length: int | None = Field(default=None, ge=1)
    index_col: str | None = Field(default=None, min_length=1, max_length=64)
    data: dict[str, list[str | float]] | None = None


Series = tuple[IntArray, FloatArray]


def _columns(data: dict[str, list[Any]], index_col: str) -> Series:
    parsed = parse_uniform(list(data[index_col]))
    assert parsed is not None
    values = np.array(data[EXPECT.columns[0]], dtype=np.float64)
    return regular_series(parsed.ns, values, index_col, EXPECT)


def _stdlib(raw: bytes) -> Series:
    req = parse_predict(decode_json(raw), EXPECT)
    assert req.times_ns is not None and req.values is not None
    return req.times_ns, req.values


def _msgspec(raw: bytes) -> Series:
    req = read_predict(raw, EXPECT)
    assert req.times_ns is not None and req.values is not None
    return req.times_ns, req.values


def _pydantic(raw: bytes) -> Series:
    model = _PydanticBody.model_validate_json(raw)
    assert model.data is not None
    return _columns(model.data, model.index_col or "time")


def _json_columns(raw: bytes) -> Series:
    decoded = json.loads(raw)
    return _columns(decoded["data"], decoded.get("index_col", "time"))


DECODERS: dict[str, Callable[[bytes], object]] = {
    "stdlib": decode_json,
    "msgspec": msgspec.json.Decoder(PredictBody).decode,
    "pydantic": _PydanticBody.model_validate_json,
}

CANDIDATES: dict[str, Callable[[bytes], Series]] = {
    "stdlib": _stdlib,
    "msgspec": _msgspec,
    "pydantic": _pydantic,
    "json+columns": _json_columns,
}


def _least_ms(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    with threadpool_limits(limits=1):  # as in a worker (WEB_BLAS_THREADS)
        for _ in range(repeats):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
    return best * 1000


def measure(rows: int, repeats: int, inner: int) -> dict[str, float]:
    """Least CPU ms per body of ``rows`` rows for each candidate (``inner`` calls per timing)."""
    raw = body(rows)
    expected = _stdlib(raw)
    out: dict[str, float] = {}
    for name, fn in CANDIDATES.items():
        times, values = fn(raw)
        assert np.array_equal(times, expected[0]) and np.array_equal(values, expected[1]), name

        def run(fn: Callable[[bytes], Series] = fn) -> None:
            for _ in range(inner):
                fn(raw)

        out[name] = round(_least_ms(run, repeats) / inner, 4)
    for name, decode in DECODERS.items():

        def decode_only(decode: Callable[[bytes], object] = decode) -> None:
            for _ in range(inner):
                decode(raw)

        out[f"decode:{name}"] = round(_least_ms(decode_only, repeats) / inner, 4)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--rows", type=int, nargs="+", default=[336, 1000, 3000])
    args = parser.parse_args(argv)
    repeats, inner = (3, 5) if args.quick else (15, 20)
    results = {rows: measure(rows, repeats, inner) for rows in args.rows}
    for title, names in (
        ("decode + validate", list(CANDIDATES)),
        ("typed decode only", [f"decode:{n}" for n in DECODERS]),
    ):
        print(f"{title} (CPU ms per body, least of {repeats} x {inner})")
        print(f"{'rows':>6} " + " ".join(f"{n.split(':')[-1]:>13}" for n in names))
        for rows, row in results.items():
            print(f"{rows:>6} " + " ".join(f"{row[n]:>13.3f}" for n in names))
    path = write_results("decode", {"quick": args.quick, "rows": results})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
