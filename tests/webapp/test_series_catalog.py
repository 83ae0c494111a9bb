"""The series catalog of a generation: counting, O(1) lookup, the listing and its paging.

Tables are built as the daemon publishes them (``series_id`` column, rows sorted by id then
time) and wrapped in ``shm.Snapshot`` as a reader makes them (inline), or published in
segments by a real ``shm.Publisher`` and read back (segmented).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.metadata import iso_utc
from contract.series import DEFAULT_SERIES_ID, SERIES_ID_COLUMN, segment_of
from shm import Epoch, Publisher, Reader, Snapshot
from tests.shm._tables import split_by_segment
from tests.webapp._bodies import series_ids
from tests.webapp._support import series_table
from webapp.series_catalog import SeriesCatalog

STEP = 1800 * 1_000_000_000
START = 962_409_600 * 1_000_000_000
PROPERTY = settings(max_examples=150, deadline=None)


@contextlib.contextmanager
def published(table: pa.Table, layout: str, segments: int = 4) -> Iterator[Snapshot]:
    """``table`` as a generation of ``layout``: inline (a snapshot of the table) or
    segmented (published in ``segments`` segments in a temporary shm directory)."""
    if layout == "inline":
        yield snapshot(table)
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp, Publisher(Path(tmp) / "w") as pub:
        pub.publish_segments(split_by_segment(table, segments), segments=segments)
        snap = Reader(Path(tmp) / "w").current()
        assert snap is not None and snap.segmented
        yield snap


LAYOUTS = st.sampled_from(["inline", "segmented"])


def snapshot(table: pa.Table, generation: int = 1) -> Snapshot:
    return Snapshot(
        generation=generation, table=table, metadata={}, published_at_ns=0, epoch=Epoch.new()
    )


def window(rows: int, offset: int = 0) -> pa.Table:
    times = START + (np.arange(rows, dtype=np.int64) + offset) * STEP
    return pa.table(
        {
            "time": pa.array(times, type=pa.timestamp("ns", tz="UTC")),
            "demand_mw": pa.array(np.arange(rows, dtype=np.float64) + offset),
        }
    )


_id_sets = st.dictionaries(series_ids, st.integers(1, 5), min_size=1, max_size=40)


@PROPERTY
@given(ids=_id_sets, layout=LAYOUTS)
def test_every_series_is_found_with_exactly_its_rows(ids, layout):
    parts = {sid: window(rows, offset=i * 10) for i, (sid, rows) in enumerate(ids.items())}
    with published(series_table(parts), layout) as snap:
        check_every_series(SeriesCatalog.of(snap), parts)


def check_every_series(catalog: SeriesCatalog, parts: dict[str, pa.Table]) -> None:
    assert catalog.problem is None and catalog.count == len(parts)
    for sid, table in parts.items():
        rows = catalog.lookup(sid)
        assert rows is not None and rows.series_id == sid and rows.rows == table.num_rows
        assert rows == catalog.lookup(sid)  # the same version for the same rows
        assert rows.times_ns().tolist() == pc.cast(table["time"], pa.int64()).to_pylist()
        assert rows.values("demand_mw").tolist() == table["demand_mw"].to_pylist()
    assert catalog.lookup("\x00not-there") is None


@PROPERTY
@given(ids=_id_sets)
def test_python_order_of_ids_is_the_byte_order_of_their_utf8_and_arrows_sort(ids):
    listed = sorted(ids)
    assert listed == sorted(ids, key=lambda s: s.encode("utf-8"))
    column = pa.array(list(ids), pa.string())
    assert column.take(pc.sort_indices(column)).to_pylist() == listed


@PROPERTY
@given(ids=_id_sets, limit=st.integers(1, 50), start=st.none() | series_ids, layout=LAYOUTS)
def test_walking_every_page_lists_each_id_once_in_order(ids, limit, start, layout):
    parts = {sid: window(rows) for sid, rows in ids.items()}
    with published(series_table(parts), layout) as snap:
        check_pages(SeriesCatalog.of(snap), parts, limit, start)


def check_pages(
    catalog: SeriesCatalog, parts: dict[str, pa.Table], limit: int, start: str | None
) -> None:
    ids = parts
    seen, after, pages = [], start, 0
    while True:
        page = catalog.page(after, limit)
        assert page.total == len(ids) and len(page.items) <= limit
        seen += [item.series_id for item in page.items]
        pages += 1
        if page.next_after is None:
            break
        assert page.next_after == page.items[-1].series_id
        after = page.next_after
    expected = sorted(sid for sid in ids if start is None or sid > start)
    assert seen == expected
    assert pages == max(1, -(-len(expected) // limit))
    for item in catalog.page(None, len(ids)).items:
        table = parts[item.series_id]
        times = pc.cast(table["time"], pa.int64()).to_pylist()
        assert (item.rows, item.time_min_ns, item.time_max_ns) == (len(times), times[0], times[-1])


def test_a_table_without_series_ids_is_the_default_series():
    table = window(7)
    catalog = SeriesCatalog.of(snapshot(table))
    assert catalog.count == 1 and catalog.problem is None
    only = catalog.only()
    assert only is not None and only.series_id == DEFAULT_SERIES_ID and only.rows == 7
    assert catalog.lookup(DEFAULT_SERIES_ID) == only
    assert SeriesCatalog.of(snapshot(window(0))).count == 0


def test_lookups_are_zero_copy_slices_of_the_mapped_table():
    table = series_table({"a": window(5), "b": window(6)})
    rows = SeriesCatalog.of(snapshot(table)).lookup("b")
    assert rows is not None
    base = np.asarray(table["demand_mw"].chunks[0].to_numpy())
    values = rows.values("demand_mw")
    assert np.shares_memory(values, base) and values.tolist() == list(range(6))


def test_the_version_names_the_generation():
    table = series_table({"a": window(5), "b": window(6)})
    one, two = snapshot(table, 1), snapshot(table, 2)
    a1 = SeriesCatalog.of(one).lookup("a")
    assert a1 is not None and a1.version == SeriesCatalog.of(one).lookup("a").version  # type: ignore[union-attr]
    assert a1.version != SeriesCatalog.of(two).lookup("a").version  # type: ignore[union-attr]


def test_a_segmented_catalog_versions_a_series_by_its_segment_and_takes_the_published_range() -> (
    None
):
    parts = {f"m{n}": window(3 + n, offset=n) for n in range(12)}
    table = series_table(parts)
    times = pc.cast(table["time"], pa.int64()).to_numpy()
    meta = {"time_min": iso_utc(int(times.min())), "time_max": iso_utc(int(times.max()))}
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp, Publisher(Path(tmp) / "w") as pub:
        reader = Reader(Path(tmp) / "w")
        pub.publish_segments(split_by_segment(table, 4), segments=4, metadata=meta)
        first = SeriesCatalog.of(reader.current())  # type: ignore[arg-type]
        moved = "m3"
        changed = {**parts, moved: window(2)}
        segment = segment_of(moved, 4)
        pub.publish_segments(
            {segment: split_by_segment(series_table(changed), 4)[segment]}, segments=4
        )
        second = SeriesCatalog.of(reader.current())  # type: ignore[arg-type]
    assert first.time_range() == (int(times.min()), int(times.max()))
    assert second.time_range() is None  # no published range: none is made up
    for sid in parts:
        a, b = first.lookup(sid), second.lookup(sid)
        assert a is not None and b is not None
        same_segment = segment_of(sid, 4) == segment
        assert (a.version == b.version) is not same_segment, sid
    assert second.lookup(moved).rows == 2  # type: ignore[union-attr]


def test_the_catalog_is_derived_once_per_generation():
    snap = snapshot(series_table({"a": window(3)}))
    assert SeriesCatalog.of(snap) is SeriesCatalog.of(snap)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (
            pa.concat_tables(
                [
                    series_table({"a": window(2)}),
                    series_table({"b": window(2)}),
                    series_table({"a": window(2, 5)}),
                ]
            ),
            "not contiguous",
        ),
        (
            window(3).add_column(0, SERIES_ID_COLUMN, pa.array(["a", None, "a"], pa.string())),
            "null",
        ),
        (window(3).add_column(0, SERIES_ID_COLUMN, pa.array([1, 1, 2])), "not string"),
    ],
    ids=["not-contiguous", "null-id", "not-text"],
)
def test_a_layout_that_cannot_name_its_series_serves_none_and_says_why(table, problem):
    catalog = SeriesCatalog.of(snapshot(table))
    assert catalog.count == 0 and catalog.problem is not None and problem in catalog.problem
    assert catalog.lookup("a") is None and catalog.page(None, 10).items == ()


def test_series_grouped_but_not_sorted_are_still_listed_in_order():
    parts = [series_table({"b": window(2)}), series_table({"a": window(3)})]
    catalog = SeriesCatalog.of(snapshot(pa.concat_tables(parts)))
    assert [i.series_id for i in catalog.page(None, 10).items] == ["a", "b"]
    assert catalog.lookup("a").rows == 3  # type: ignore[union-attr]
