"""The series_id column built from buffers equals the one ``take`` builds, for any ids."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache_daemon.id_column import IdColumns, repeated_ids

_RUNS = st.lists(st.tuples(st.text(max_size=12), st.integers(0, 40)), max_size=20)


@given(_RUNS)
def test_equals_take_of_the_ids(runs: list[tuple[str, int]]) -> None:
    ids = [series_id for series_id, _ in runs]
    counts = [count for _, count in runs]
    built = repeated_ids(ids, counts)
    built.validate(full=True)
    expected = pa.array(ids, pa.string()).take(np.repeat(np.arange(len(ids)), counts))
    assert built.type == pa.string()
    assert built.null_count == 0
    assert built.equals(expected)


def test_mismatched_lengths_and_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="2 ids for 1 counts"):
        repeated_ids(["a", "b"], [1])
    with pytest.raises(ValueError, match="negative"):
        repeated_ids(["a"], [-1])


@given(st.lists(st.tuples(st.sampled_from(["a", "meter-7", "zählér"]), st.integers(0, 3000))))
def test_remembered_columns_equal_built_ones(calls: list[tuple[str, int]]) -> None:
    columns = IdColumns()
    for series_id, count in calls:
        got = columns([series_id], [count])
        got.validate(full=True)
        assert got.equals(repeated_ids([series_id], [count]))
    assert columns(["a", "b"], [2, 3]).equals(repeated_ids(["a", "b"], [2, 3]))


def test_a_growing_window_of_one_series_reuses_its_column() -> None:
    columns = IdColumns()
    data = columns(["meter"], [2_000]).buffers()[2].address
    for count in range(2_001, 2_250):
        assert columns(["meter"], [count]).buffers()[2].address == data
    assert columns(["other"], [2_000]).buffers()[2].address != data
    assert columns(["other"], [50_000]).buffers()[2].address != data


def test_a_slice_is_written_as_its_rows_only() -> None:
    # Published windows must not carry the remembered column's spare room into shm.
    def ipc_size(column: pa.StringArray) -> int:
        sink = pa.BufferOutputStream()
        table = pa.table({"series_id": column})
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        return int(sink.getvalue().size)

    columns = IdColumns()
    columns(["meter"], [10_000])
    sliced = columns(["meter"], [9_000])
    assert ipc_size(sliced) <= ipc_size(repeated_ids(["meter"], [9_000])) + 64


def test_several_series_let_the_remembered_column_go() -> None:
    # A window that held one large series and now holds several keeps no copy of the old
    # column (its bytes and offsets are Python bytes objects, which tracemalloc sees).
    tracemalloc.start()
    try:
        columns = IdColumns()
        columns(["meter"], [1_000_000])
        held = tracemalloc.get_traced_memory()[0]
        assert columns(["a", "b"], [1, 1]).equals(repeated_ids(["a", "b"], [1, 1]))
        released = held - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert released > 8_000_000  # 5.6 MB of bytes and 4.5 MB of offsets, room included
