"""Every payload generator, property-tested: coherent timestamps, and the server accepts it.

Times are re-parsed here with ``datetime.fromisoformat``, independently of the generators;
acceptance is decided by the webapp's own validator (``webapp.validation``), and ingest events
by the daemon's own decoder.
"""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache_daemon.decode import Decoder
from locustfiles import (
    UTC_ZONE,
    EncodedRequest,
    LoadConfig,
    PayloadError,
    Series,
    SeriesError,
    bad_cases,
    cached_request,
    check_times,
    ingest_event,
    load_series,
    parse_zone,
    real_request,
    series_request,
    synthetic_request,
)
from webapp.errors import ProblemError
from webapp.validation import Expectations, decode_json, parse_predict

NS = 1_000_000_000
STEP = 1800 * NS
MIN_ROWS = 336  # the lag window of the project's model (forecasting.train default)
ZONES = [
    "Z",
    "naive",
    "+00:00",
    "+02:00",
    "-05:00",
    "+05:30",
    "-09:30",
    "Europe/London",
    "America/New_York",
    "Australia/Lord_Howe",
]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def expectations(step_ns: int = STEP, min_rows: int = MIN_ROWS) -> Expectations:
    return Expectations(
        columns=("demand_mw",),
        min_rows=min_rows,
        step_ns=step_ns,
        max_rows=10_000,
        max_inference_length=48,
        default_inference_length=1,
        max_gap_steps=0,
    )


def coherent_times(texts: list[str], step_ns: int, zone_name: str) -> list[int]:
    """Independent check: unique, strictly increasing, constant UTC step, one zone."""
    zone = parse_zone(zone_name)
    moments = [datetime.fromisoformat(t) for t in texts]
    aware = {m.tzinfo is not None for m in moments}
    assert aware == {zone_name != "naive"}, "times mix offsets and no offset"
    if zone_name == "Z":
        assert all(t.endswith("Z") for t in texts)
    utc = [m if m.tzinfo is not None else m.replace(tzinfo=UTC) for m in moments]
    if zone.tz is not None and zone_name != "Z":
        for m, u in zip(moments, utc, strict=True):
            assert m.utcoffset() == u.astimezone(zone.tz).utcoffset()  # the zone's, then
    ns = [(u - EPOCH) // timedelta(microseconds=1) * 1000 for u in utc]
    assert len(set(ns)) == len(ns), "duplicate timestamps"
    assert all(b - a == step_ns for a, b in itertools.pairwise(ns)), "irregular step"
    return ns


def accepted(body: object, expect: Expectations) -> tuple[list[int] | None, int]:
    """What the server's validator makes of a body (it raises ProblemError when it refuses)."""
    raw = json.dumps(body, allow_nan=False).encode()
    req = parse_predict(decode_json(raw), expect)
    times = None if req.times_ns is None else req.times_ns.tolist()
    return times, req.inference_length


# Series ids as the service lists them: 1 to 128 bytes of UTF-8, any characters.
_series_ids = st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) <= 128)


@PROPERTY
@given(
    rows=st.integers(2, 700),
    step_s=st.sampled_from([1, 60, 300, 900, 1800, 3600, 86_400]),
    zone=st.sampled_from(ZONES),
    seed=st.integers(0, 2**32),
    length=st.integers(1, 48),
)
def test_synthetic_series_are_coherent_and_accepted(rows, step_s, zone, seed, length):
    step = step_s * NS
    req = synthetic_request(
        random.Random(seed),
        rows=rows,
        step_ns=step,
        zone=parse_zone(zone),
        column="demand_mw",
        inference_length=length,
    )
    data = req.body["data"]
    ns = coherent_times(data["time"], step, zone)
    assert req.last_time_ns == ns[-1] and req.step_ns == step
    values = data["demand_mw"]
    assert len(values) == rows and all(5_000 < v < 60_000 for v in values)
    times, got_length = accepted(req.body, expectations(step, min_rows=rows))
    assert times == ns and got_length == length


def test_synthetic_series_cross_a_dst_switch_with_one_utc_step():
    # Europe/London moved from +00:00 to +01:00 at 2021-03-28T01:00:00Z.
    start = int(datetime(2021, 3, 27, 12, tzinfo=UTC).timestamp()) * NS
    req = synthetic_request(
        random.Random(1),
        rows=MIN_ROWS,
        step_ns=STEP,
        zone=parse_zone("Europe/London"),
        column="demand_mw",
        inference_length=4,
        start_ns=start,
    )
    texts = req.body["data"]["time"]
    offsets = {datetime.fromisoformat(t).utcoffset() for t in texts}
    assert offsets == {timedelta(0), timedelta(hours=1)}
    ns = coherent_times(texts, STEP, "Europe/London")
    assert accepted(req.body, expectations())[0] == ns


@pytest.fixture(scope="module")
def sample() -> Series:
    return load_series(LoadConfig())


@PROPERTY
@given(rows=st.integers(MIN_ROWS, 2000), seed=st.integers(0, 2**32), length=st.integers(1, 48))
def test_real_windows_are_contiguous_slices_and_accepted(sample, rows, seed, length):
    req = real_request(sample, random.Random(seed), rows=rows, inference_length=length)
    data = req.body["data"]
    ns = coherent_times(data["time"], STEP, "Z")
    start = int(np.searchsorted(sample.times_ns, ns[0]))
    assert sample.times_ns[start : start + rows].tolist() == ns
    assert sample.values[start : start + rows].tolist() == data["demand_mw"]
    times, got_length = accepted(req.body, expectations())
    assert times == ns and got_length == length


@PROPERTY
@given(gap_at=st.integers(400, 1600), gap_steps=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_real_windows_never_span_a_gap_in_the_source(gap_at, gap_steps, seed):
    times = np.arange(2000, dtype=np.int64) * STEP
    times[gap_at:] += gap_steps * STEP
    series = Series.from_arrays(times, np.linspace(1.0, 2.0, 2000), "demand_mw")
    assert series.runs == ((0, gap_at), (gap_at, 2000))
    req = real_request(series, random.Random(seed), rows=MIN_ROWS, inference_length=1)
    coherent_times(req.body["data"]["time"], STEP, "Z")


def test_real_windows_longer_than_any_stretch_are_refused_by_the_generator():
    times = np.concatenate([np.arange(100), np.arange(200, 300)]).astype(np.int64) * STEP
    series = Series.from_arrays(times, np.ones(200), "demand_mw")
    with pytest.raises(SeriesError, match="no contiguous stretch of 101 rows"):
        real_request(series, random.Random(0), rows=101, inference_length=1)


def test_a_series_with_repeated_timestamps_is_refused_at_load():
    times = np.array([0, STEP, STEP, 3 * STEP], dtype=np.int64)
    with pytest.raises(SeriesError, match="repeats the timestamp"):
        Series.from_arrays(times, np.ones(4), "demand_mw")


@given(length=st.one_of(st.none(), st.integers(1, 48)))
def test_cached_bodies_are_accepted(length):
    req = cached_request(length)
    times, got_length = accepted(req.body, expectations())
    assert times is None and got_length == (1 if length is None else length)


@PROPERTY
@given(
    rows=st.integers(MIN_ROWS, 700),
    zone=st.sampled_from(ZONES),
    seed=st.integers(0, 2**32),
    lengths=st.lists(st.one_of(st.none(), st.integers(1, 48)), min_size=1, max_size=4),
)
def test_a_series_encoded_once_is_resent_with_any_length_as_a_fresh_encoding(
    rows, zone, seed, lengths
):
    base = synthetic_request(
        random.Random(seed),
        rows=rows,
        step_ns=STEP,
        zone=parse_zone(zone),
        column="demand_mw",
        inference_length=7,
    )
    encoded = EncodedRequest.of(base)
    for length in lengths:
        req, body = encoded.with_length(length)
        # What the answer is checked against follows the length; the series is the one sent.
        assert req.inference_length == length
        assert (req.last_time_ns, req.step_ns, req.mode) == (base.last_time_ns, STEP, "synthetic")
        assert json.loads(body) == json.loads(req.encode()) == req.body
        assert ("inference_length" in req.body) == (length is not None)
        assert req.body["data"] is base.body["data"]  # re-sent, not rebuilt
        times, got_length = accepted(json.loads(body), expectations(min_rows=rows))
        assert times == coherent_times(base.body["data"]["time"], STEP, zone)
        assert got_length == (1 if length is None else length)


@given(series_id=_series_ids, lengths=st.lists(st.none() | st.integers(1, 48), max_size=4))
def test_series_bodies_encoded_once_name_their_series_and_are_accepted(series_id, lengths):
    encoded = EncodedRequest.of(series_request(series_id, None))
    for length in lengths:
        req, body = encoded.with_length(length)
        assert json.loads(body) == req.body == series_request(series_id, length).body
        assert req.mode == "series" and req.inference_length == length
        parsed = parse_predict(decode_json(body), expectations())
        assert parsed.series_id == series_id and parsed.times_ns is None
        assert parsed.inference_length == (1 if length is None else length)


@given(length=st.one_of(st.none(), st.integers(1, 48)))
def test_cached_bodies_encoded_once_are_the_bodies_of_cached_requests(length):
    req, body = EncodedRequest.of(cached_request(None)).with_length(length)
    assert body == cached_request(length).encode()
    assert req.body == cached_request(length).body and req.inference_length == length


@given(
    when=st.integers(0, 2**62 // 1000).map(lambda us: us * 1000),
    value=st.floats(-1e9, 1e9, allow_nan=False),
)
def test_ingest_events_decode_in_the_daemon(when, value):
    event = Decoder(("demand_mw",)).decode(ingest_event(when, value, "demand_mw"))
    assert event.time_ns == when and event.values == (value,)


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(MIN_ROWS, 700), step_s=st.sampled_from([60, 1800, 3600]))
def test_every_bad_case_is_refused_by_the_server_with_its_documented_reason(rows, step_s):
    step = step_s * NS
    cases = bad_cases(
        rows=rows, step_ns=step, column="demand_mw", max_rows=10_000, max_body_bytes=1_048_576
    )
    assert {c.status for c in cases} == {400, 413, 415, 422}
    for case in cases:
        if case.status == 422:
            with pytest.raises(ProblemError) as info:
                parse_predict(decode_json(case.body), expectations(step, min_rows=rows))
            assert info.value.status == 422
            assert case.code in {e.code for e in info.value.errors}, case.name
        elif case.status == 400:
            with pytest.raises(ProblemError) as info:
                decode_json(case.body)
            assert info.value.status == 400
        elif case.status == 413:
            assert len(case.body) > 1_048_576
        else:
            assert case.content_type != "application/json"


def test_too_many_rows_is_left_out_when_its_body_would_exceed_the_byte_limit():
    names = {
        c.name
        for c in bad_cases(
            rows=MIN_ROWS, step_ns=STEP, column="demand_mw", max_rows=10_000, max_body_bytes=200_000
        )
    }
    assert "too_many_rows" not in names and "body_too_large" in names


# -- the seed report's bug: identical timestamps -------------------------------------------


def seed_report_times(step_minutes: int, total: int) -> list[str]:
    """The seed report's generator, verbatim in shape: naive ISO strings from a start plus
    ``i * step`` minutes. With the step collapsed to 0 every timestamp is the same."""
    t0 = datetime(2018, 2, 6, tzinfo=UTC)
    times_dt = [t0 + timedelta(minutes=i * step_minutes) for i in range(total)]
    return [ts.replace(tzinfo=None).isoformat() for ts in times_dt]


def test_the_seed_reports_bug_shape_is_refused_by_our_generators():
    times = seed_report_times(0, 50)
    assert len(set(times)) == 1  # the shape: 50 rows, one timestamp
    ns = [int(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp()) * NS for t in times]
    with pytest.raises(PayloadError, match="all 50 timestamps are identical"):
        check_times(ns, STEP)
    with pytest.raises(PayloadError, match="step must be positive"):
        synthetic_request(
            random.Random(0),
            rows=50,
            step_ns=0,
            zone=UTC_ZONE,
            column="demand_mw",
            inference_length=1,
        )


def test_the_seed_reports_bug_shape_is_a_clear_422_from_the_validator():
    body = {
        "index_col": "time",
        "data": {"time": seed_report_times(0, 50), "demand_mw": [100.0] * 50},
        "inference_length": 1,
    }
    with pytest.raises(ProblemError) as info:
        parse_predict(body, expectations(min_rows=10))
    assert info.value.status == 422
    (error,) = info.value.errors
    assert error.code == "duplicate_timestamps"
    assert "49 duplicate timestamp(s)" in error.detail
