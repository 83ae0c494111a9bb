"""Record decoding: valid events and one fixed reason per kind of poison."""

from __future__ import annotations

import pytest

from cache_daemon.decode import MAX_RECORD_BYTES, REASONS, Decoder
from cache_daemon.errors import DecodeError

DEC = Decoder(["demand_mw"])
T0 = 960_163_200 * 10**9  # 2000-06-05T00:00:00Z


def test_valid_record() -> None:
    event = DEC.decode(b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 22262}')
    assert event.time_ns == T0
    assert event.values == (22262.0,)
    assert isinstance(event.values[0], float)


@pytest.mark.parametrize(
    "stamp",
    ["2000-06-05T02:00:00+02:00", "2000-06-04T19:00:00-05:00", "2000-06-05 00:00:00+00:00"],
)
def test_offsets_are_converted_to_utc(stamp: str) -> None:
    assert DEC.decode(f'{{"time": "{stamp}", "demand_mw": 1}}'.encode()).time_ns == T0


def test_microseconds_are_kept() -> None:
    event = DEC.decode(b'{"time": "2000-06-05T00:00:00.000123Z", "demand_mw": 1}')
    assert event.time_ns == T0 + 123_000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"x" * (MAX_RECORD_BYTES + 1), "too_large"),
        (b"{not json", "bad_json"),
        (b"\xff\xfe\x00garbage", "bad_json"),
        (b"[" * 50_000, "bad_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b'{"demand_mw": 1}', "missing_time"),
        (b'{"time": 960163200, "demand_mw": 1}', "bad_time"),
        (b'{"time": "yesterday", "demand_mw": 1}', "bad_time"),
        (b'{"time": "2000-06-05T00:00:00", "demand_mw": 1}', "bad_time"),
        (b'{"time": "9999-12-31T00:00:00Z", "demand_mw": 1}', "bad_time"),
        (b'{"time": "2000-06-05T00:00:00Z"}', "missing_column"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1, "temp": 3}', "unknown_column"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": "12"}', "wrong_type"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": null}', "wrong_type"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": true}', "wrong_type"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": [1]}', "wrong_type"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": NaN}', "non_finite"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": -Infinity}', "non_finite"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1e400}', "non_finite"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1e13}', "out_of_range"),
        (b'{"time": "2000-06-05T00:00:00Z", "demand_mw": 1' + b"0" * 400 + b"}", "out_of_range"),
    ],
)
def test_poison_records_get_their_reason(raw: bytes | None, reason: str) -> None:
    assert reason in REASONS
    with pytest.raises(DecodeError) as info:
        DEC.decode(raw)
    assert info.value.reason == reason
    assert info.value.detail


def test_reason_detail_names_the_field() -> None:
    with pytest.raises(DecodeError, match="'demand_mw' is str"):
        DEC.decode(b'{"time": "2000-06-05T00:00:00Z", "demand_mw": "x"}')


def test_multi_column_values_follow_configured_order() -> None:
    dec = Decoder(["a", "b"])
    event = dec.decode(b'{"b": 2, "time": "2000-06-05T00:00:00Z", "a": 1.5}')
    assert event.values == (1.5, 2.0)
