"""The series_id column built from buffers equals the one ``take`` builds, for any ids."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache_daemon.id_column import repeated_ids

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
