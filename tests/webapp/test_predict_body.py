"""The server's one-pass body reader gives exactly the outcome of the precise path.

``read_predict(raw)`` (msgspec decode of valid bodies, a shallow exact decode of the others)
must equal ``parse_predict(decode_json(raw))`` in every outcome: the same series, or the
same status, problem type, detail and field errors.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.errors import ProblemError
from webapp.fast_body import fast_predict
from webapp.isotimes import parse_uniform
from webapp.json_keys import no_object_has_two_keys
from webapp.predict_body import read_predict
from webapp.validation import Expectations, decode_json, parse_predict

STEP_S = 1800
START = 962_409_600  # 2000-07-01T00:00:00Z
ROWS = 40
EXPECT = Expectations(
    columns=("demand_mw",),
    min_rows=24,
    step_ns=STEP_S * 1_000_000_000,
    max_rows=60,
    max_inference_length=48,
    default_inference_length=1,
    max_gap_steps=1,
)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(fn) -> tuple:
    try:
        req = fn()
    except ProblemError as exc:
        return (exc.status, exc.slug, exc.detail, [e.as_dict() for e in exc.errors])
    times = None if req.times_ns is None else req.times_ns.tolist()
    values = None if req.values is None else req.values.tobytes()
    return ("ok", req.inference_length, times, values, req.quantiles, req.series_id)


def precise(raw: bytes, expect: Expectations) -> object:
    # One frame, as read_predict is: how deep a body may nest depends on the stack.
    return parse_predict(decode_json(raw), expect)


def same(raw: bytes, expect: Expectations = EXPECT) -> tuple:
    fast = outcome(lambda: read_predict(raw, expect))
    precise_outcome = outcome(lambda: precise(raw, expect))
    assert fast == precise_outcome, raw[:300]
    return fast


def times(rows: int = ROWS, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> list[str]:
    return [time.strftime(fmt, time.gmtime(START + STEP_S * i)) for i in range(rows)]


def series(rows: int = ROWS, fmt: str = "%Y-%m-%dT%H:%M:%SZ") -> dict[str, list]:
    return {"time": times(rows, fmt), "demand_mw": [30_000.5 + i for i in range(rows)]}


@pytest.mark.parametrize(
    "fmt",
    [
        "%Y-%m-%dT%H:%M:%SZ",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S.000Z",
        "%Y-%m-%dT%H:%M:%S.000000+00:00",
        "%Y-%m-%dT%H:%M:%S-00:00",
    ],
)
def test_common_shapes_take_the_one_pass_path_with_the_same_series(fmt):
    raw = json.dumps({"index_col": "time", "data": series(fmt=fmt), "inference_length": 3})
    assert fast_predict(raw.encode(), EXPECT) is not None
    assert same(raw.encode())[0] == "ok"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"inference_length": 2, "inference_length": 3}',
        b'{"data": {"time": [], "time": []}}',
        b'{"inference_length": NaN}',
        b'{"x": [{"a": 1, "a": 2}]}',
        b'{"x": [{"a": 1, "b": 2}], "inference_length": 0}',
        b'{"x": "\\u003a", "y": {"k": 1, "k": 2}}',
        b'{"x": ' + b"9" * 4301 + b"}",
        b'{"x": ' + b"9" * 4300 + b"}",
        b'{"x": 1e400, "inference_length": 1e400}',
        b'{"inference_length": "\\ud800"}',
        b'{"\\ud800": 1}',
        b"[1, 2]",
        b'"text"',
        b"",
        b"\xff",
        b'{"a": "\xc3\xa9"}',
        b'{"inference_length": -0}',
        b'{"inference_length": 3.0}',
        b'{"inference_length": 49}',
        b'{"index_col": "time"}',
        b'{"data": [], "index_col": 5}',
        b'{"data": {"time": "x", "demand_mw": {"a": 1}}}',
    ],
)
def test_odd_bodies_get_the_precise_outcome(raw):
    same(raw)


def _with(column: str, index: int, element: str) -> bytes:
    data = series()
    data[column][index] = "@@"
    text = json.dumps({"index_col": "time", "data": data, "inference_length": 2})
    return text.replace('"@@"', element).encode()


_elements = st.sampled_from(
    [
        *("NaN", "Infinity", "-Infinity", "1e400", "-0", "-0.0", "1e301", "1" + "0" * 301),
        *("true", "null", "[]", "{}", '{"a": 1, "a": 2}', '["2000-07-01T00:00:00Z"]'),
        *('"2000-07-01T00:00:00"', '"2000-07-01T00:00:00+01:00"', '"2000-07-01T00:00:00.1234567Z"'),
        *('"2000-02-30T00:00:00Z"', '"1699-12-31T23:00:00Z"', '"2000-07-01T00:00:60Z"'),
        *('"2000-07-01T00:00:00+24:00"', '"2000-07-01T00:00:00z"', '"x"', '"\\u0032000-07-01"'),
        *('"2000-07-01T10:00:00Z"', '"2000-07-01T00:15:00Z"', "12345678901234567890123"),
    ]
) | st.floats(allow_nan=False, allow_infinity=False).map(repr)


@PROPERTY
@given(
    column=st.sampled_from(["time", "demand_mw"]),
    index=st.integers(0, ROWS - 1),
    element=_elements,
)
def test_a_changed_element_gets_the_precise_outcome(column, index, element):
    same(_with(column, index, element))


_keys = st.sampled_from(
    ["inference_length", "index_col", "data", "series_id", "time", "demand_mw", "x"]
)


@PROPERTY
@given(
    top=st.lists(
        st.tuples(_keys, st.sampled_from(["2", '"time"', '"t"', "0", "[]", '"m:1"', '""'])),
        max_size=3,
    ),
    extra=st.lists(st.tuples(_keys, st.sampled_from(["[]", "[1]", '{"a":1}'])), max_size=2),
    rows=st.sampled_from([1, 23, 24, 60, 61]),
    blank=st.sampled_from(["", " ", "\n\t"]),
)
def test_keys_repeated_missing_or_unknown_get_the_precise_outcome(top, extra, rows, blank):
    data = json.dumps(series(rows))[1:-1]
    inner = ",".join([data, *(f'"{k}":{v}' for k, v in extra)])
    pairs = [f'"data":{{{inner}}}', *(f'"{k}":{blank}{v}' for k, v in top)]
    same(("{" + blank + ",".join(pairs) + "}").encode())


# Series ids as JSON text: plain and escaped, with colons (the fast path counts them),
# at and beyond the 128-byte limit in one- and multi-byte characters, lone surrogates.
_series_id_texts = st.one_of(
    st.text(max_size=140).map(json.dumps),
    st.text(max_size=140).map(lambda t: json.dumps(t, ensure_ascii=False)),
    st.sampled_from(
        [
            '"a:b"',
            '"\\u003a"',
            '"\\ud800"',
            '"x"',
            '"' + "x" * 128 + '"',
            '"' + "x" * 129 + '"',
            '"' + "é" * 64 + '"',
            '"' + "é" * 65 + '"',
            "null",
            "7",
            '["a"]',
        ]
    ),
)


@PROPERTY
@given(
    series_id=_series_id_texts,
    with_data=st.booleans(),
    repeated=st.booleans(),
    length=st.sampled_from(["", ',"inference_length":3', ',"inference_length":0']),
)
def test_a_series_id_gets_the_precise_outcome(series_id, with_data, repeated, length):
    data = f',"data":{json.dumps(series())}' if with_data else ""
    again = ',"series_id":"other"' if repeated else ""
    raw = f'{{"series_id":{series_id}{again}{data}{length}}}'.encode()
    outcome = same(raw)
    if outcome[0] == "ok" and not repeated:
        assert read_predict(raw, EXPECT).series_id == json.loads(raw)["series_id"]


@pytest.mark.parametrize("with_data", [False, True])
def test_a_valid_series_id_takes_the_one_pass_path(with_data):
    body: dict = {"series_id": "meter:7/é", "inference_length": 2}
    if with_data:
        body["data"] = series()
    raw = json.dumps(body, ensure_ascii=False).encode()
    fast = fast_predict(raw, EXPECT)
    assert fast is not None and fast.series_id == "meter:7/é"
    assert same(raw)[0] == "ok"


_LIMIT = sys.getrecursionlimit()


@pytest.mark.parametrize("column", ["time", "demand_mw", "x"])
def test_nesting_near_the_decoders_limit_gets_the_precise_outcome(column):
    seen = set()
    for depth in range(_LIMIT - 150, _LIMIT + 5):
        nested = "[" * depth + "]" * depth
        raw = (
            _with(column, 7, nested)
            if column != "x"
            else f'{{"x": {nested}, "inference_length": 0}}'.encode()
        )
        seen.add(same(raw)[0])
    assert seen == {400, 422}


# -- the parts -------------------------------------------------------------------------------


_moments = st.datetimes(
    min_value=datetime(1699, 1, 2), max_value=datetime(2200, 12, 30), timezones=st.none()
)
_offsets = st.sampled_from([None, 0, 60, -300, 330, -570, 1439, -1439])
_fractions = st.sampled_from(["", ".1", ".12", ".123", ".123456"])


@PROPERTY
@given(moment=_moments, offset=_offsets, fraction=_fractions, sep=st.sampled_from("T "))
def test_vectorised_times_equal_fromisoformat(moment, offset, fraction, sep):
    text = moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction
    if offset is not None:
        zone = timezone(timedelta(minutes=offset))
        text += "Z" if offset == 0 else datetime(2000, 1, 1, tzinfo=zone).strftime("%z")
        text = text[:-2] + ":" + text[-2:] if offset else text
    parsed = parse_uniform([text, text])
    python = datetime.fromisoformat(text)
    if parsed is None:
        return
    aware = python if python.tzinfo else python.replace(tzinfo=UTC)
    expected = (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    assert parsed.ns.tolist() == [expected, expected]
    assert parsed.aware == (python.tzinfo is not None)


@PROPERTY
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_values_decode_to_the_same_floats(values):
    texts = [repr(v) for v in values] + [str(int(v)) for v in values if abs(v) < 1e30]
    raw = ("[" + ",".join(texts) + "]").encode()
    got = np.array(msgspec.json.decode(raw, type=list[str | float]))
    assert got.tobytes() == np.array(json.loads(raw), dtype=np.float64).tobytes()


def _has_two_keys(value: object) -> bool:
    if isinstance(value, dict):
        return len(value) > 1 or any(_has_two_keys(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_two_keys(v) for v in value)
    return False


_json_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet='ab,{}[]:" ', max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet="ab,{}[]:", max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


@PROPERTY
@given(value=_json_values)
def test_objects_with_two_keys_are_found_from_the_bytes(value):
    text = json.dumps(value, ensure_ascii=False).encode()
    found = no_object_has_two_keys(text)
    if found is not None:  # strings with a quote are escaped: not decided from the bytes
        assert found == (not _has_two_keys(value))


@pytest.mark.parametrize(
    ("even", "odd"),
    [
        ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.000000+00:00"),
        ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.5"),
        ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"),
    ],
)
def test_times_of_several_shapes_get_the_precise_outcome(even, odd):
    data = series()
    pairs = enumerate(zip(times(fmt=odd), times(fmt=even), strict=True))
    data["time"] = [t if i % 2 else e for i, (t, e) in pairs]
    raw = json.dumps({"index_col": "time", "data": data}).encode()
    outcome = same(raw)
    if odd.endswith("+00:00"):  # two shapes, both with an offset: still one pass
        assert outcome[0] == "ok" and fast_predict(raw, EXPECT) is not None


_level_texts = st.sampled_from(
    [
        "0.1",
        "0.10",
        "1e-1",
        "0.5",
        "0.9",
        "0.025",
        "0.975",
        "1e-5",
        "0",
        "1",
        "1.0",
        "-0.1",
        "2",
        "0.99999999999999999",
        "true",
        "null",
        '"0.1"',
        "[0.1]",
        "1e400",
    ]
)


@PROPERTY
@given(
    levels=st.lists(_level_texts, max_size=11),
    with_data=st.booleans(),
    as_array=st.booleans(),
)
def test_quantiles_get_the_precise_outcome(levels, with_data, as_array):
    """Every list of levels (valid, repeated, out of range, too many, not numbers), with and
    without a caller's series: the one-pass path gives the precise path's outcome."""
    quantiles = "[" + ",".join(levels) + "]" if as_array else (levels[0] if levels else "{}")
    data = f',"data":{json.dumps(series())}' if with_data else ""
    same(f'{{"quantiles":{quantiles}{data}}}'.encode())


def test_quantile_levels_are_kept_in_the_order_written():
    raw = json.dumps({"quantiles": [0.9, 0.1, 0.5], "data": series()}).encode()
    assert same(raw)[4] == (0.9, 0.1, 0.5)
