"""``POST /predict`` bodies from bytes to a validated request, the cheap way first.

:func:`read_predict` gives the outcome of ``parse_predict(decode_json(raw), expect)``: the
same request, or the same 400 or 422. A valid body is decoded and validated in one pass
(:func:`webapp.fast_body.fast_predict`); any other body is decoded shallowly
(:func:`webapp.shallow_json.decode_shallow`) and validated by
:func:`webapp.validation.parse_predict`, which finds and names its errors.
"""

from __future__ import annotations

from webapp.fast_body import fast_predict
from webapp.shallow_json import UNDECIDED, decode_shallow
from webapp.validation import Expectations, PredictRequest, decode_json, parse_predict

__all__ = ["check_json", "read_predict"]


def read_predict(raw: bytes, expect: Expectations) -> PredictRequest:
    """The validated request of ``raw``; raise the 400 or 422 ProblemError otherwise."""
    request = fast_predict(raw, expect)
    if request is not None:
        return request
    # The default index column is read like the value columns.
    body = decode_shallow(raw, (expect.index_col, *expect.columns), expect.max_rows)
    if body is UNDECIDED:
        # Called from this frame, as the server always called it: how deep a body may nest
        # depends on the depth of the stack.
        body = decode_json(raw)
    return parse_predict(body, expect)


def check_json(raw: bytes) -> None:
    """Raise the 400 of a body that is not JSON (for answers that come before validation)."""
    if decode_shallow(raw, (), 0) is UNDECIDED:
        decode_json(raw)
