"""Series ids from Kafka keys and their segments: the rules the daemon and readers share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.series import (
    DEFAULT_SERIES_ID,
    KEY_NOT_UTF8,
    KEY_TOO_LONG,
    MAX_SERIES_ID_BYTES,
    SeriesIdError,
    check_series_id,
    segment_of,
    series_id_of_key,
)


def test_no_key_is_the_default_series() -> None:
    assert series_id_of_key(None) == DEFAULT_SERIES_ID
    assert series_id_of_key(b"") == DEFAULT_SERIES_ID
    assert series_id_of_key(None, "meter") == "meter"


@given(st.text(min_size=1).filter(lambda t: len(t.encode()) <= MAX_SERIES_ID_BYTES))
def test_a_utf8_key_is_its_text(text: str) -> None:
    assert series_id_of_key(text.encode()) == text
    assert check_series_id(text) == text


@given(st.binary(min_size=1, max_size=MAX_SERIES_ID_BYTES + 40))
def test_any_key_names_a_series_or_gives_a_reason(key: bytes) -> None:
    try:
        series_id = series_id_of_key(key)
    except SeriesIdError as exc:
        assert exc.reason in (KEY_NOT_UTF8, KEY_TOO_LONG)
        assert exc.detail
        if len(key) > MAX_SERIES_ID_BYTES:
            assert exc.reason == KEY_TOO_LONG
    else:
        assert series_id.encode() == key


def test_long_and_invalid_keys_have_their_own_reasons() -> None:
    with pytest.raises(SeriesIdError) as long_key:
        series_id_of_key(b"k" * (MAX_SERIES_ID_BYTES + 1))
    assert long_key.value.reason == KEY_TOO_LONG
    with pytest.raises(SeriesIdError) as bad:
        series_id_of_key(b"\xff\xfe")
    assert bad.value.reason == KEY_NOT_UTF8
    with pytest.raises(SeriesIdError):
        check_series_id("")
    with pytest.raises(SeriesIdError):
        check_series_id("\udcff")


@given(st.text(), st.integers(min_value=1, max_value=10_000))
def test_segments_are_in_range_and_stable(series_id: str, segments: int) -> None:
    try:
        series_id.encode()
    except UnicodeEncodeError:
        return
    segment = segment_of(series_id, segments)
    assert 0 <= segment < segments
    assert segment == segment_of(series_id, segments)


def test_segment_values_do_not_change_between_releases() -> None:
    # Published segments outlive a process: the mapping is part of the on-disk format.
    assert [segment_of(s, 64) for s in ("default", "meter-1", "store/42")] == [31, 39, 25]
    assert segment_of("default", 1) == 0
    with pytest.raises(ValueError):
        segment_of("x", 0)
