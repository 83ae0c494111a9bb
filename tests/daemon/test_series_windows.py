"""Many series in one window: per-series bounds, MAX_SERIES, the TTL, changes, tables, restore."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_daemon.errors import SnapshotError
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.window import TIME_TYPE, Outcome, Window
from contract.series import (
    DEFAULT_SERIES_ID,
    MAX_SERIES_ID_BYTES,
    SERIES_ID_COLUMN,
    SERIES_LIMIT,
    SeriesIdError,
    segment_of,
)

STEP = 1800 * 1_000_000_000
NOW = 2**62  # a wall clock later than every event of these tests


def windows(**kwargs: Any) -> SeriesWindows:
    kwargs.setdefault("max_rows", 100)
    kwargs.setdefault("max_duration_ns", None)
    kwargs.setdefault("clock", lambda: NOW)
    return SeriesWindows(["v"], **kwargs)


def rows_of(table: pa.Table) -> list[tuple[str, int, float]]:
    return list(
        zip(
            table.column(SERIES_ID_COLUMN).to_pylist(),
            table.column("time").cast(pa.int64()).to_pylist(),
            table.column("v").to_pylist(),
            strict=True,
        )
    )


def test_bounds_apply_per_series() -> None:
    w = windows(max_rows=3)
    for i in range(5):
        w.apply("a", i * STEP, (float(i),))
    w.apply("b", 0, (9.0,))
    assert rows_of(w.to_table()) == [
        ("a", 2 * STEP, 2.0),
        ("a", 3 * STEP, 3.0),
        ("a", 4 * STEP, 4.0),
        ("b", 0, 9.0),
    ]
    # "a" is full and its oldest row is newer: the same time is too old for "a" only.
    assert w.apply("a", 0, (1.0,)) is Outcome.DROPPED_LATE
    assert w.apply("b", STEP, (1.0,)) is Outcome.INSERTED
    assert (len(w), w.series_count, w.time_max) == (5, 2, 4 * STEP)


def test_duration_bound_applies_per_series() -> None:
    w = windows(max_rows=None, max_duration_ns=2 * STEP)
    for i in range(5):
        w.apply("a", i * STEP, (float(i),))
    assert w.apply("b", 0, (0.0,)) is Outcome.INSERTED  # far behind "a", inside its own window
    assert [t for s, t, _ in rows_of(w.to_table()) if s == "a"] == [3 * STEP, 4 * STEP]


def test_table_schema_is_series_id_time_then_values_sorted_by_id_then_time() -> None:
    w = SeriesWindows(["a", "b"], max_rows=10, max_duration_ns=None)
    for series_id in ("zeta", "Alpha", "ä", "alpha"):
        for i in (2, 0, 1):
            w.apply(series_id, i * STEP, (float(i), -float(i)))
    table = w.to_table()
    assert table.schema.names == [SERIES_ID_COLUMN, "time", "a", "b"]
    assert table.schema.field(SERIES_ID_COLUMN).type == pa.string()
    assert table.schema.field("time").type == TIME_TYPE
    ids = table.column(SERIES_ID_COLUMN).to_pylist()
    assert ids == [s for s in ("Alpha", "alpha", "zeta", "ä") for _ in range(3)]
    assert table.column("time").cast(pa.int64()).to_pylist() == [0, STEP, 2 * STEP] * 4
    # Arrow's own sort (UTF-8 bytes) agrees with the table's order.
    order = pa.compute.sort_indices(table, [(SERIES_ID_COLUMN, "ascending"), ("time", "ascending")])
    assert order.to_pylist() == list(range(12))


def test_an_empty_set_gives_an_empty_table_of_the_same_schema() -> None:
    w = windows()
    table = w.to_table()
    assert table.num_rows == 0
    assert table.schema.names == [SERIES_ID_COLUMN, "time", "v"]
    assert (len(w), w.series_count, w.time_max) == (0, 0, None)


def test_series_limit_refuses_new_series_only() -> None:
    w = windows(max_series=2)
    w.apply("a", 0, (1.0,))
    w.apply("b", 0, (1.0,))
    version, rows = w.version, len(w)
    with pytest.raises(SeriesIdError) as info:
        w.apply("c", STEP, (1.0,))
    assert info.value.reason == SERIES_LIMIT
    assert "MAX_SERIES=2" in info.value.detail
    assert (w.version, len(w), "c" in w) == (version, rows, False)
    assert w.apply("a", STEP, (2.0,)) is Outcome.INSERTED  # held series go on
    assert w.time_max == STEP  # the refused event did not move the stream time


def test_ttl_drops_a_silent_series_counts_it_and_marks_it_changed() -> None:
    w = windows(ttl_ns=10 * STEP)
    w.apply("quiet", 0, (1.0,))
    w.apply("busy", 0, (1.0,))
    w.clear_changed()
    w.apply("busy", 10 * STEP, (1.0,))  # exactly the TTL: not longer, kept
    assert "quiet" in w and w.pop_expired() == 0
    w.apply("busy", 10 * STEP + 1, (1.0,))
    assert "quiet" not in w
    assert w.pop_expired() == 1 and w.pop_expired() == 0
    assert w.changed_series() == {"quiet", "busy"}
    assert (len(w), w.series_count) == (3, 1)
    # The id may come back later, as a new series, but not with rows the TTL would drop.
    assert w.apply("quiet", 0, (5.0,)) is Outcome.DROPPED_LATE
    assert "quiet" not in w and w.pop_expired() == 0
    w.apply("quiet", 11 * STEP, (5.0,))
    assert rows_of(w.to_table())[-1] == ("quiet", 11 * STEP, 5.0)


def test_ttl_keeps_a_series_that_keeps_talking() -> None:
    w = windows(ttl_ns=3 * STEP)
    for i in range(20):
        w.apply("a", i * STEP, (1.0,))
        if i % 2 == 0:
            w.apply("b", i * STEP, (1.0,))
    assert w.series_count == 2 and w.pop_expired() == 0


def test_ttl_stream_time_is_capped_at_the_wall_clock() -> None:
    now = 100 * STEP
    w = windows(ttl_ns=10 * STEP, clock=lambda: now)
    w.apply("a", 95 * STEP, (1.0,))
    w.apply("rogue", 10_000 * STEP, (1.0,))  # far in the future: the stream time stays at now
    assert "a" in w
    w.apply("b", 106 * STEP, (1.0,))  # the stream time moves on from the wall clock
    assert "a" in w
    now = 110 * STEP
    w.apply("b", 107 * STEP, (1.0,))
    assert "a" not in w and w.pop_expired() == 1


def test_without_ttl_nothing_expires() -> None:
    w = windows()
    w.apply("old", 0, (1.0,))
    w.apply("new", 10**6 * STEP, (1.0,))
    assert w.series_count == 2 and w.pop_expired() == 0


def test_changes_are_tracked_per_series_and_segment() -> None:
    w = windows(max_rows=2)
    w.apply("a", STEP, (1.0,))
    w.apply("b", STEP, (1.0,))
    assert w.changed_series() == {"a", "b"}
    assert w.changed_segments(7) == {segment_of("a", 7), segment_of("b", 7)}
    w.clear_changed()
    w.apply("a", STEP, (1.0,))  # identical duplicate
    w.apply("a", 2 * STEP, (1.0,))
    w.apply("a", 3 * STEP, (1.0,))
    w.apply("a", 0, (1.0,))  # too old
    assert w.changed_series() == {"a"}
    w.clear_changed()
    w.apply("a", 0, (1.0,))
    w.apply("b", STEP, (1.0,))
    assert w.changed_series() == frozenset()
    w.apply("b", STEP, (2.0,))  # an update
    assert w.changed_series() == {"b"}


@settings(max_examples=50, deadline=None)
@given(
    ids=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=40, unique=True),
    segments=st.integers(1, 9),
)
def test_segment_tables_partition_the_whole_table(ids: list[str], segments: int) -> None:
    w = windows()
    for n, series_id in enumerate(ids):
        for i in range(n % 3 + 1):
            w.apply(series_id, i * STEP, (float(n),))
    whole = w.to_table()
    parts = []
    for segment in range(segments):
        table = w.segment_table(segment, segments)
        members = w.segment_series(segment, segments)
        if table is None:
            assert members == []
            continue
        assert table.schema == whole.schema
        assert sorted(set(table.column(SERIES_ID_COLUMN).to_pylist())) == members
        assert all(segment_of(s, segments) == segment for s in members)
        parts.append(table)
    joined = pa.concat_tables(parts)
    order = pa.compute.sort_indices(
        joined, [(SERIES_ID_COLUMN, "ascending"), ("time", "ascending")]
    )
    assert joined.take(order).equals(whole)


def test_segment_index_follows_new_and_dropped_series() -> None:
    w = windows(ttl_ns=STEP)
    w.apply("a", 0, (1.0,))
    segment = segment_of("b", 4)
    before = w.segment_series(segment, 4)
    w.apply("b", 0, (1.0,))
    assert "b" in w.segment_series(segment, 4) and "b" not in before
    w.apply("c", 5 * STEP, (1.0,))  # "a" and "b" are now silent for longer than the TTL
    assert w.segment_series(segment, 4) == (["c"] if segment_of("c", 4) == segment else [])
    assert w.segment_table(segment_of("a", 4), 4) in (None, w.segment_table(segment_of("c", 4), 4))
    with pytest.raises(ValueError, match="segment 4"):
        w.segment_series(4, 4)


def test_reindex_applies_per_series() -> None:
    w = windows()
    for i in (0, 1, 2, 4):
        w.apply("gappy", i * STEP, (float(i),))
    for i in (0, 3, 6):
        w.apply("sparse", i * STEP * 3, (float(i),))
    rows = rows_of(w.to_table(gap_policy="reindex"))
    assert [(s, t // STEP, v) for s, t, v in rows] == [
        ("gappy", 0, 0.0),
        ("gappy", 1, 1.0),
        ("gappy", 2, 2.0),
        ("gappy", 3, 3.0),
        ("gappy", 4, 4.0),
        ("sparse", 0, 0.0),
        ("sparse", 9, 3.0),
        ("sparse", 18, 6.0),
    ]
    assert len(w) == 7  # the windows themselves are unchanged


def test_a_table_without_series_id_loads_as_the_default_series() -> None:
    table = pa.table({"time": pa.array([0, STEP], TIME_TYPE), "v": [1.0, 2.0]})
    w = windows(default_series="meter")
    assert w.load(table) == 2
    assert rows_of(w.to_table()) == [("meter", 0, 1.0), ("meter", STEP, 2.0)]
    assert windows().load(table) == 2
    plain = windows()
    plain.load(table)
    assert plain.series_ids() == [DEFAULT_SERIES_ID]


def test_load_accepts_dictionary_and_large_string_ids_in_any_order() -> None:
    ids = ["b", "a", "b", "a"]
    times = pa.array([STEP, 0, 0, STEP], TIME_TYPE)
    for column in (
        pa.array(ids).dictionary_encode(),
        pa.array(ids, pa.large_string()),
        pa.chunked_array([ids[:1], ids[1:]]),
    ):
        w = windows()
        w.load(pa.table({SERIES_ID_COLUMN: column, "time": times, "v": [1.0, 2.0, 3.0, 4.0]}))
        assert rows_of(w.to_table()) == [
            ("a", 0, 2.0),
            ("a", STEP, 4.0),
            ("b", 0, 3.0),
            ("b", STEP, 1.0),
        ]


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (pa.array([1, 2]), "not text"),
        (pa.array(["a", None]), "holds nulls"),
        (pa.array(["a", ""]), "is empty"),
        (pa.array(["a", "x" * (MAX_SERIES_ID_BYTES + 1)]), "at most 128"),
    ],
)
def test_load_rejects_unusable_series_ids(ids: pa.Array[Any], message: str) -> None:
    table = pa.table(
        {SERIES_ID_COLUMN: ids, "time": pa.array([0, STEP], TIME_TYPE), "v": [1.0, 2.0]}
    )
    with pytest.raises(SnapshotError, match=message):
        windows().load(table)


def test_load_keeps_every_series_beyond_the_limit_and_refuses_new_ones() -> None:
    big = windows()
    for series_id in "abc":
        big.apply(series_id, 0, (1.0,))
    small = windows(max_series=2)
    small.load(big.to_table())
    assert small.series_ids() == ["a", "b", "c"]
    with pytest.raises(SeriesIdError):
        small.apply("d", 0, (1.0,))
    small.apply("a", STEP, (1.0,))


def test_load_drops_series_a_shorter_ttl_has_expired() -> None:
    w = windows()
    w.apply("old", 0, (1.0,))
    w.apply("new", 10 * STEP, (1.0,))
    restored = windows(ttl_ns=5 * STEP)
    restored.load(w.to_table())
    assert restored.series_ids() == ["new"] and restored.pop_expired() == 1


def test_many_series_table_is_built_from_arrays() -> None:
    w = windows(max_rows=4)
    for i in range(4):
        for n in range(5_000):
            w.apply(f"series-{n:05d}", i * STEP, (float(n),))
    table = w.to_table()
    assert table.num_rows == 20_000 and w.series_count == 5_000
    assert table.column(SERIES_ID_COLUMN)[4].as_py() == "series-00001"
    assert table.column("v")[-1].as_py() == 4999.0


# -- reference model and restart --------------------------------------------------------------


def reference(
    events: list[tuple[str, int, float]],
    *,
    max_rows: int | None,
    max_series: int | None,
    ttl: int | None,
) -> tuple[dict[str, list[tuple[int, float]]], int, int]:
    """Straightforward model: (rows per series, records refused by the limit, expired)."""
    held: dict[str, dict[int, float]] = {}
    refused = expired = 0
    stream: int | None = None
    for series_id, t, v in events:
        if series_id not in held:
            if ttl is not None and stream is not None and t < stream - ttl:
                continue  # dead on arrival: dropped as late
            if max_series is not None and len(held) >= max_series:
                refused += 1
                continue
            held[series_id] = {}
        rows = held[series_id]
        if t not in rows and max_rows is not None and len(rows) >= max_rows and t < min(rows):
            continue
        rows[t] = v
        for k in sorted(rows)[: max(0, len(rows) - (max_rows or len(rows)))]:
            del rows[k]
        stream = t if stream is None else max(stream, t)
        if ttl is not None:
            for sid in [s for s, r in held.items() if max(r) < stream - ttl]:
                del held[sid]
                expired += 1
    return {s: sorted(r.items()) for s, r in sorted(held.items())}, refused, expired


_keys = st.sampled_from(["a", "b", "c", "ä", "series-0001", "series-0002", "z" * 128, "🙂"])
_events = st.lists(
    st.tuples(_keys, st.integers(0, 40).map(lambda k: k * STEP), st.integers(-3, 3).map(float)),
    max_size=150,
)


def run(w: SeriesWindows, events: list[tuple[str, int, float]]) -> tuple[int, int]:
    refused = 0
    for series_id, t, v in events:
        try:
            w.apply(series_id, t, (v,))
        except SeriesIdError:
            refused += 1
    return refused, w.pop_expired()


@settings(max_examples=300, deadline=None)
@given(
    events=_events,
    max_rows=st.one_of(st.none(), st.integers(1, 8)),
    max_series=st.one_of(st.none(), st.integers(1, 6)),
    ttl=st.one_of(st.none(), st.integers(1, 15).map(lambda k: k * STEP)),
)
def test_matches_reference_model(
    events: list[tuple[str, int, float]],
    max_rows: int | None,
    max_series: int | None,
    ttl: int | None,
) -> None:
    w = windows(max_rows=max_rows or 1000, max_series=max_series, ttl_ns=ttl)
    refused, expired = run(w, events)
    expected, expected_refused, expected_expired = reference(
        events, max_rows=max_rows or 1000, max_series=max_series, ttl=ttl
    )
    got: dict[str, list[tuple[int, float]]] = {}
    for series_id, t, v in rows_of(w.to_table()):
        got.setdefault(series_id, []).append((t, v))
    assert got == expected
    assert (refused, expired) == (expected_refused, expected_expired)
    assert len(w) == sum(len(r) for r in expected.values())
    assert w.series_count == len(expected)


@settings(max_examples=300, deadline=None)
@given(
    events=_events,
    cut=st.integers(0, 150),
    max_rows=st.integers(1, 8),
    duration=st.one_of(st.none(), st.integers(1, 20).map(lambda k: k * STEP)),
    max_series=st.one_of(st.none(), st.integers(1, 6)),
    ttl=st.one_of(st.none(), st.integers(1, 15).map(lambda k: k * STEP)),
)
def test_restart_from_the_published_table_ends_in_the_same_state(
    events: list[tuple[str, int, float]],
    cut: int,
    max_rows: int,
    duration: int | None,
    max_series: int | None,
    ttl: int | None,
) -> None:
    """Interrupted (publish at ``cut``, load into a new set, apply the rest) and uninterrupted
    runs end with the same table, the same refusals and the same number of expired series."""

    def fresh() -> SeriesWindows:
        return windows(
            max_rows=max_rows, max_duration_ns=duration, max_series=max_series, ttl_ns=ttl
        )

    whole = fresh()
    refused, expired = run(whole, events)
    first = fresh()
    refused_1, expired_1 = run(first, events[:cut])
    restarted = fresh()
    restarted.load(first.to_table())
    assert restarted.pop_expired() == 0
    refused_2, expired_2 = run(restarted, events[cut:])
    assert restarted.to_table().equals(whole.to_table())
    assert (refused_1 + refused_2, expired_1 + expired_2) == (refused, expired)
    assert (len(restarted), restarted.time_max) == (len(whole), whole.time_max)


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(-(2**62), 2**62) | st.integers(0, 30), max_size=60),
    max_rows=st.one_of(st.none(), st.integers(1, 20)),
    duration=st.one_of(st.none(), st.integers(1, 2**62)),
)
def test_window_bulk_load_equals_applying_rows_one_by_one(
    times: list[int], max_rows: int | None, duration: int | None
) -> None:
    if max_rows is None and duration is None:
        max_rows = 7
    values = np.arange(len(times), dtype=np.float64).reshape(-1, 1)
    bulk = Window(["v"], max_rows=max_rows, max_duration_ns=duration)
    bulk.load_arrays(np.array(times, dtype=np.int64), values)
    one_by_one = Window(["v"], max_rows=max_rows, max_duration_ns=duration)
    for i in np.argsort(np.array(times, dtype=np.int64), kind="stable").tolist():
        one_by_one.apply(times[i], (float(i),))
    assert (len(bulk), bulk.time_min, bulk.time_max) == (
        len(one_by_one),
        one_by_one.time_min,
        one_by_one.time_max,
    )
    assert bulk.to_table().equals(one_by_one.to_table())
    bulk.apply(2**62 + 1, (0.5,))  # the bulk-filled window goes on like any other
    one_by_one.apply(2**62 + 1, (0.5,))
    assert bulk.to_table().equals(one_by_one.to_table())
    assert (len(bulk), bulk.time_min, bulk.time_max) == (
        len(one_by_one),
        one_by_one.time_min,
        one_by_one.time_max,
    )


@settings(max_examples=100, deadline=None)
@given(events=_events, data=st.data())
def test_a_table_in_any_row_order_loads_to_the_same_state(
    events: list[tuple[str, int, float]], data: st.DataObject
) -> None:
    w = windows(max_rows=6)
    run(w, events)
    table = w.to_table()
    order = data.draw(st.permutations(range(table.num_rows)))
    shuffled = windows(max_rows=6)
    shuffled.load(table.take(pa.array(order, pa.int64())))
    assert shuffled.to_table().equals(table)
    # Blocks of whole series in another order take the path without a sort.
    ids = w.series_ids()
    blocks = pa.concat_tables(
        [table.slice(0, 0)]
        + [table.filter(pa.compute.equal(table[SERIES_ID_COLUMN], sid)) for sid in reversed(ids)]
    )
    by_blocks = windows(max_rows=6)
    by_blocks.load(blocks)
    assert by_blocks.to_table().equals(table)
