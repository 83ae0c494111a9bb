"""table_checksum and SegmentsChecksum: equal contents give equal digests, any change of content
changes it."""

from __future__ import annotations

from random import Random

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shm import SegmentsChecksum, segment_checksum, table_checksum

_TEXT = st.one_of(st.none(), st.text(max_size=12))
_TYPES = st.sampled_from([pa.string(), pa.large_string(), pa.binary(), pa.large_binary()])


def _column(values: list[str | None], kind: pa.DataType) -> pa.Array:
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pa.array([None if v is None else v.encode() for v in values], kind)
    return pa.array(values, kind)


@given(st.lists(_TEXT, max_size=40), _TYPES, st.data())
def test_variable_width_digest_ignores_chunks_and_slices(
    values: list[str | None], kind: pa.DataType, data: st.DataObject
) -> None:
    whole = pa.table({"s": _column(values, kind)})
    size = data.draw(st.integers(min_value=1, max_value=max(1, len(values))))
    chunked = pa.Table.from_batches(whole.to_batches(max_chunksize=size), whole.schema)
    assert table_checksum(chunked) == table_checksum(whole)
    start = data.draw(st.integers(min_value=0, max_value=len(values)))
    sliced = whole.slice(start)
    rebuilt = pa.table({"s": _column(values[start:], kind)})
    assert table_checksum(sliced) == table_checksum(rebuilt)


@given(st.lists(_TEXT, min_size=1, max_size=20), _TYPES, st.data())
def test_variable_width_digest_sees_every_change(
    values: list[str | None], kind: pa.DataType, data: st.DataObject
) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(values) - 1))
    changed = list(values)
    changed[index] = data.draw(_TEXT.filter(lambda v: v != values[index]))
    before = table_checksum(pa.table({"s": _column(values, kind)}))
    assert before != table_checksum(pa.table({"s": _column(changed, kind)}))


def test_moving_a_boundary_between_values_changes_the_digest() -> None:
    assert table_checksum(pa.table({"s": ["ab", "c"]})) != table_checksum(
        pa.table({"s": ["a", "bc"]})
    )


_SEGMENT_SUMS = st.dictionaries(
    st.integers(0, 15), st.text("0123456789abcdef", min_size=32, max_size=32), max_size=16
)


@given(_SEGMENT_SUMS, st.randoms(use_true_random=False))
def test_a_segments_checksum_does_not_depend_on_the_order_segments_were_set(
    sums: dict[int, str], random: Random
) -> None:
    forward = SegmentsChecksum(16)
    for segment, value in sums.items():
        forward.set(segment, value)
    items = list(sums.items())
    random.shuffle(items)
    # Set, overwritten, emptied and set again, in another order: the same final state.
    shuffled = SegmentsChecksum(16)
    for segment, value in items:
        shuffled.set(segment, "0" * 32)
        shuffled.set(segment, None)
        shuffled.set(segment, value)
    assert shuffled.hexdigest() == forward.hexdigest()
    assert forward.copy().hexdigest() == forward.hexdigest()


@given(_SEGMENT_SUMS, st.integers(0, 15), st.text("0123456789abcdef", min_size=32, max_size=32))
def test_any_change_of_a_segment_changes_the_segments_checksum(
    sums: dict[int, str], segment: int, value: str
) -> None:
    before = SegmentsChecksum(16)
    for s, v in sums.items():
        before.set(s, v)
    after = before.copy()
    after.set(segment, None if sums.get(segment) == value else value)
    assert after.hexdigest() != before.hexdigest()
    with pytest.raises(ValueError, match="segment 16 is not between 0 and 15"):
        before.set(16, value)


def test_the_segment_count_is_part_of_a_segments_checksum() -> None:
    assert SegmentsChecksum(16).hexdigest() != SegmentsChecksum(32).hexdigest()
    with pytest.raises(ValueError, match="at least 1"):
        SegmentsChecksum(0)


_RUNS = st.lists(st.tuples(st.text(min_size=1, max_size=6), st.integers(1, 5)), max_size=8)


def _runs_table(runs: list[tuple[str, int]], values: list[float] | None = None) -> pa.Table:
    ids = [series_id for series_id, count in runs for _ in range(count)]
    data = values if values is not None else [float(i) for i in range(len(ids))]
    return pa.table({"series_id": pa.array(ids, pa.string()), "v": pa.array(data, pa.float64())})


@given(_RUNS, st.data())
def test_a_segment_checksum_ignores_chunks_and_sees_any_change(
    runs: list[tuple[str, int]], data: st.DataObject
) -> None:
    table = _runs_table(runs)
    size = data.draw(st.integers(min_value=1, max_value=max(1, table.num_rows)))
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=size), table.schema)
    assert segment_checksum(chunked) == segment_checksum(table)
    if not table.num_rows:
        return
    row = data.draw(st.integers(0, table.num_rows - 1))
    values = table.column("v").to_pylist()
    values[row] += 1.0
    assert segment_checksum(_runs_table(runs, values)) != segment_checksum(table)
    # A row moved from one series to the next (ids differ, values and rows the same).
    if len(runs) >= 2 and runs[0][1] > 1 and runs[0][0] != runs[1][0]:
        moved = [(runs[0][0], runs[0][1] - 1), (runs[1][0], runs[1][1] + 1), *runs[2:]]
        assert segment_checksum(_runs_table(moved)) != segment_checksum(table)
