"""Segmented publication: a generation writes only the segments that changed, names the others
by reference, and readers find one series' rows in O(1), matching a brute-force model."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contract.series import DEFAULT_SERIES_ID, segment_of
from shm import (
    CorruptGenerationError,
    Publisher,
    Reader,
    SegmentsChecksum,
    Snapshot,
    segment_checksum,
    table_checksum,
)
from shm._hint import Hint
from tests.shm._files import referenced_segment_files, segment_files, temp_files
from tests.shm._kill import run_until_killed
from tests.shm._tables import make_table, series_table, split_by_segment

SEGMENTS = 8
IDS = [f"meter-{n:03d}" for n in range(60)]


def segments_of(ids: list[str], segments: int = SEGMENTS) -> set[int]:
    return {segment_of(x, segments) for x in ids}


def publish_all(publisher: Publisher, table: pa.Table, segments: int = SEGMENTS) -> int:
    return publisher.publish_segments(split_by_segment(table, segments), segments=segments)


def publish_changed(
    publisher: Publisher, table: pa.Table, changed: set[int], segments: int = SEGMENTS
) -> int:
    """Publish the segments ``changed`` of ``table`` (the whole window)."""
    parts = split_by_segment(table, segments)
    return publisher.publish_segments({s: parts[s] for s in changed}, segments=segments)


def brute_force(table: pa.Table, series_id: str) -> pa.Table | None:
    """The rows of ``series_id`` found by filtering the whole table: the model."""
    rows = table.filter(pc.equal(table.column("series_id"), series_id))
    return rows.drop_columns(["series_id"]) if rows.num_rows else None


def inode(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def current(reader: Reader) -> Snapshot:
    snapshot = reader.current()
    assert snapshot is not None
    return snapshot


def test_every_series_reads_back_and_the_listing_is_sorted(shm_dir: Path) -> None:
    rows = {x: 1 + n % 5 for n, x in enumerate(IDS)}
    table = series_table(rows, {x: float(n) for n, x in enumerate(IDS)})
    with Publisher(shm_dir) as publisher:
        generation = publish_all(publisher, table)
        publisher_metadata = {"source": "test"}
        assert publisher.publish_segments({}, segments=SEGMENTS, metadata=publisher_metadata) == 2
    snapshot = current(Reader(shm_dir))
    assert (generation, snapshot.generation, snapshot.segments) == (1, 2, SEGMENTS)
    assert snapshot.metadata == publisher_metadata
    assert snapshot.series_count == len(IDS)
    assert snapshot.num_rows == table.num_rows
    for x in [*IDS, "absent", ""]:
        expected = brute_force(table, x)
        got = snapshot.series_table(x)
        assert (got is None) == (expected is None), x
        if got is not None and expected is not None:
            assert got.equals(expected), x
            summary = snapshot.series_summary(x)
            assert summary is not None
            times = expected.column("time").cast(pa.int64()).to_pylist()
            assert (summary.rows, summary.time_min_ns, summary.time_max_ns) == (
                rows[x],
                times[0],
                times[-1],
            )
    assert list(snapshot.series_ids()) == sorted(IDS)
    assert [s.series_id for s in snapshot.series_after(None, 7)] == sorted(IDS)[:7]
    assert [s.series_id for s in snapshot.series_after(sorted(IDS)[-2], 7)] == sorted(IDS)[-1:]
    assert [s.series_id for s in snapshot.series_after("meter-0105", 2)] == [
        "meter-011",
        "meter-012",
    ]
    # The whole table: every row, series_id rebuilt; segments in segment order.
    whole = snapshot.table.sort_by([("series_id", "ascending"), ("time", "ascending")])
    assert whole.equals(table)


def test_unchanged_segments_are_named_again_not_rewritten(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 3), 1.0)
    reader = Reader(shm_dir)
    with Publisher(shm_dir, keep=3) as publisher:
        publish_all(publisher, table)
        first = current(reader)
        files = {p.name: inode(p) for p in (shm_dir / "segments").iterdir()}
        assert len(files) == len(segments_of(IDS))
        calls: list[str] = []

        def mean(series: pa.Table) -> float:
            calls.append("mean")
            return float(pc.mean(series.column("demand_mw")).as_py())

        moved, still = (
            IDS[0],
            next(x for x in IDS if segment_of(x, SEGMENTS) != segment_of(IDS[0], SEGMENTS)),
        )
        assert first.derive_series(still, "mean", mean) == 1.0
        changed = {segment_of(moved, SEGMENTS)}
        table2 = series_table(dict.fromkeys(IDS, 3), {x: 2.0 if x == moved else 1.0 for x in IDS})
        assert publish_changed(publisher, table2, changed) == 2
        second = current(reader)
    now = {p.name: inode(p) for p in (shm_dir / "segments").iterdir()}
    # One new file; every other is the same inode under the same name.
    assert set(now) - set(files) == {f"seg-{2:020d}-{segment_of(moved, SEGMENTS):07d}.arrow"}
    assert {name: now[name] for name in files} == files
    # The reader reuses what it derived for carried-over segments, not for the rewritten one.
    assert second.segment_key(still) == first.segment_key(still)
    assert second.segment_key(moved) != first.segment_key(moved)
    assert second.derive_series(still, "mean", mean) == 1.0
    assert calls == ["mean"]
    assert second.derive_series(moved, "mean", mean) == 2.0
    assert calls == ["mean", "mean"]
    assert second.derive_series("absent", "mean", mean) is None


def test_segment_files_no_kept_generation_names_are_deleted(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 0.0)
    with Publisher(shm_dir, keep=2) as publisher:
        publish_all(publisher, table)
        for step in range(1, 12):
            changed = {step % SEGMENTS, (step * 3) % SEGMENTS}
            publish_changed(publisher, series_table(dict.fromkeys(IDS, 2), float(step)), changed)
            assert segment_files(shm_dir) == referenced_segment_files(shm_dir), step
            assert len(list(shm_dir.glob("gen-*"))) == 2
        # An inline generation names no segment file: once the manifests go, so do they.
        publisher.publish(make_table(3))
        publisher.publish(make_table(3))
        assert segment_files(shm_dir) == set()
        assert publisher.strays() == []


def test_none_empties_a_segment(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    emptied = segment_of(IDS[0], SEGMENTS)
    gone = [x for x in IDS if segment_of(x, SEGMENTS) == emptied]
    with Publisher(shm_dir, keep=1) as publisher:
        publish_all(publisher, table)
        publisher.publish_segments({emptied: None}, segments=SEGMENTS)
    snapshot = current(Reader(shm_dir))
    assert snapshot.series_count == len(IDS) - len(gone)
    assert all(snapshot.series_table(x) is None for x in gone)
    assert snapshot.segment_key(gone[0]) == (snapshot.epoch, 0, emptied)
    assert not any(name.endswith(f"-{emptied:07d}.arrow") for name in segment_files(shm_dir))
    assert snapshot.num_rows == table.num_rows - 2 * len(gone)


def test_a_held_snapshot_stays_whole_after_its_files_are_deleted(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 4), 1.0)
    with Publisher(shm_dir, keep=1) as publisher:
        publish_all(publisher, table)
        held = current(Reader(shm_dir))  # no series touched yet
        for value in (2.0, 3.0):
            publish_all(publisher, series_table(dict.fromkeys(IDS, 4), value))
    assert all(name.startswith(f"seg-{3:020d}") for name in segment_files(shm_dir))
    for x in IDS:
        rows = held.series_table(x)
        assert rows is not None and rows.column("demand_mw").to_pylist() == [1.0] * 4


def test_a_new_layout_must_name_every_segment(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    parts = split_by_segment(table, SEGMENTS)
    with Publisher(shm_dir) as publisher:
        with pytest.raises(ValueError, match="give every segment"):
            publisher.publish_segments({0: parts[0]}, segments=SEGMENTS)
        publish_all(publisher, table)
        # Another segment count is a new layout...
        with pytest.raises(ValueError, match="give every segment"):
            publisher.publish_segments({}, segments=SEGMENTS * 2)
        # ...and so is anything after an inline generation.
        publisher.publish(table)
        with pytest.raises(ValueError, match="give every segment"):
            publisher.publish_segments({0: parts[0]}, segments=SEGMENTS)
        assert publisher.generation == 2
    assert segment_files(shm_dir) == referenced_segment_files(shm_dir)


def _bad(kind: str) -> tuple[int, pa.Table]:
    """A segment number and a table that breaks one rule."""
    ids = sorted(x for x in IDS if segment_of(x, SEGMENTS) == 0)[:3]
    good = series_table(dict.fromkeys(ids, 3), 1.0)
    if kind == "unsorted":
        return 0, good.take([3, 4, 5, 0, 1, 2, 6, 7, 8])
    if kind == "split-series":
        return 0, good.take([0, 1, 3, 2, 4, 5, 6, 7, 8])
    if kind == "time-backwards":
        return 0, good.take([1, 0, 2, 3, 4, 5, 6, 7, 8])
    if kind == "wrong-segment":
        return 1, good
    if kind == "out-of-range":
        return SEGMENTS, good
    if kind == "no-series-id":
        return 0, good.drop_columns(["series_id"])
    if kind == "series-id-int":
        return 0, good.set_column(0, "series_id", pa.array(range(9), pa.int64()))
    if kind == "time-int":
        return 0, good.set_column(1, "time", good.column("time").cast(pa.int64()))
    if kind == "time-null":
        times = pa.array([None, *good.column("time").to_pylist()[1:]], good.column("time").type)
        return 0, good.set_column(1, "time", times)
    if kind == "id-null":
        ids_null = pa.array([None, *good.column("series_id").to_pylist()[1:]], pa.string())
        return 0, good.set_column(0, "series_id", ids_null)
    if kind in ("id-empty", "id-too-long"):
        odd = "" if kind == "id-empty" else "x" * 129
        return segment_of(odd, SEGMENTS), series_table({odd: 2}, 1.0)
    if kind == "other-columns":
        return 0, good.append_column("extra", pa.array([1.0] * 9))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("unsorted", "not sorted by series_id"),
        ("split-series", "not sorted by series_id"),
        ("time-backwards", "not sorted by time"),
        ("wrong-segment", "belongs to segment 0"),
        ("out-of-range", "not between 0 and 7"),
        ("no-series-id", "needs a 'series_id' column"),
        ("series-id-int", "needs a 'series_id' column"),
        ("time-int", "needs a 'time' column"),
        ("time-null", "'time' holds nulls"),
        ("id-null", "'series_id' holds nulls"),
        ("id-empty", "series id is empty"),
        ("id-too-long", "at most 128"),
        ("other-columns", "differ from the generation's"),
    ],
)
def test_a_table_that_breaks_a_rule_is_refused_before_anything_is_written(
    shm_dir: Path, kind: str, message: str
) -> None:
    table = series_table(dict.fromkeys(IDS, 3), 1.0)
    segment, bad = _bad(kind)
    with Publisher(shm_dir) as publisher:
        publish_all(publisher, table)
        before = segment_files(shm_dir)
        with pytest.raises(ValueError, match=message):
            publisher.publish_segments({segment: bad}, segments=SEGMENTS)
        assert publisher.generation == 1
    assert segment_files(shm_dir) == before
    assert temp_files(shm_dir) == []


class LazySegments(Mapping[int, "pa.Table | None"]):
    """Builds each segment's table when asked for it, and counts the requests."""

    def __init__(self, table: pa.Table, segments: int, bad: int | None = None) -> None:
        self._table, self._segments, self._bad = table, segments, bad
        self.requests: list[int] = []

    def __getitem__(self, segment: int) -> pa.Table | None:
        self.requests.append(segment)
        part = split_by_segment(self._table, self._segments)[segment]
        if segment == self._bad and part is not None:
            return part.drop_columns(["time"])
        return part

    def __iter__(self) -> Iterator[int]:
        return iter(range(self._segments))

    def __len__(self) -> int:
        return self._segments


def test_a_lazy_mapping_is_read_once_and_a_late_refusal_leaves_nothing(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    with Publisher(shm_dir) as publisher:
        refused = LazySegments(table, SEGMENTS, bad=SEGMENTS - 1)
        with pytest.raises(ValueError, match=f"segment {SEGMENTS - 1}: .*'time'"):
            publisher.publish_segments(refused, segments=SEGMENTS)
        assert refused.requests == list(range(SEGMENTS))
        assert (publisher.generation, segment_files(shm_dir), temp_files(shm_dir)) == (0, set(), [])
        lazy = LazySegments(table, SEGMENTS)
        assert publisher.publish_segments(lazy, segments=SEGMENTS) == 1
        assert lazy.requests == list(range(SEGMENTS))
    assert current(Reader(shm_dir)).series_count == len(IDS)


def test_an_inline_generation_answers_the_series_api(shm_dir: Path) -> None:
    with Publisher(shm_dir) as publisher:
        publisher.publish(make_table(5, 2.0))
        one = current(Reader(shm_dir))
        named = current(Reader(shm_dir, default_series_id="meter"))
        multi = series_table({"a": 2, "b": 3}, 4.0)
        publisher.publish(multi)
        both = current(Reader(shm_dir))
    assert (one.segments, one.series_count, list(one.series_ids())) == (1, 1, [DEFAULT_SERIES_ID])
    assert one.series_table(DEFAULT_SERIES_ID).equals(make_table(5, 2.0))  # type: ignore[union-attr]
    assert one.series_table("meter") is None
    assert named.series_table("meter") is not None
    assert one.segment_key(DEFAULT_SERIES_ID) == (one.epoch, 1, 0)
    assert (both.series_count, list(both.series_ids())) == (2, ["a", "b"])
    assert both.series_table("b").equals(brute_force(multi, "b"))  # type: ignore[union-attr]
    assert both.series_summary("a").rows == 2  # type: ignore[union-attr]


def test_the_listing_is_kept_while_the_set_of_series_is_unchanged(shm_dir: Path) -> None:
    reader = Reader(shm_dir)
    with Publisher(shm_dir) as publisher:
        publish_all(publisher, series_table(dict.fromkeys(IDS, 2), 1.0))
        listing = current(reader).series_ids()
        publish_changed(publisher, series_table(dict.fromkeys(IDS, 3), 2.0), {0, 1})
        assert current(reader).series_ids() is listing  # values and lengths changed, not ids
        grown = dict.fromkeys([*IDS, "new"], 3)
        publish_changed(publisher, series_table(grown, 2.0), {segment_of("new", SEGMENTS)})
        snapshot = current(reader)
    assert snapshot.series_ids() is not listing
    assert list(snapshot.series_ids()) == sorted([*IDS, "new"])


def _die_before_the_announcement(directory: Path, table: pa.Table) -> None:
    """In a child: publish every segment, then be killed at the instant the next generation's
    segment files are renamed into place and its manifest is not (the hint write)."""
    publisher = Publisher(directory)
    publish_all(publisher, table)

    def killed(self: Hint, generation: int) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    Hint.write = killed  # type: ignore[method-assign]
    publish_all(publisher, table)


def test_a_new_run_adopts_earlier_files_and_removes_orphans(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    run_until_killed(lambda: _die_before_the_announcement(shm_dir, table))
    orphans = {name for name in segment_files(shm_dir) if name.startswith(f"seg-{2:020d}")}
    assert len(orphans) == len(segments_of(IDS))
    assert temp_files(shm_dir)  # the manifest's temp file
    reader = Reader(shm_dir)
    assert current(reader).generation == 1
    with Publisher(shm_dir, keep=2) as publisher:
        assert temp_files(shm_dir) == []
        assert segment_files(shm_dir) == referenced_segment_files(shm_dir)
        assert not orphans & segment_files(shm_dir)
        assert publisher.strays() == []
        with pytest.raises(ValueError, match="give every segment"):
            publisher.publish_segments({}, segments=SEGMENTS)
        for value in (2.0, 3.0):
            publish_all(publisher, series_table(dict.fromkeys(IDS, 2), value))
        # The earlier run's generation is pruned, and with it its segment files.
        assert all(not name.startswith(f"seg-{1:020d}") for name in segment_files(shm_dir))
        assert segment_files(shm_dir) == referenced_segment_files(shm_dir)
    assert current(reader).series_table(IDS[0]).column("demand_mw")[0].as_py() == 3.0  # type: ignore[union-attr]


def test_planted_files_among_segments_are_never_deleted_nor_overwritten(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    with Publisher(shm_dir, keep=1) as publisher:
        publish_all(publisher, table)
        segment = segment_of(IDS[0], SEGMENTS)
        # The names the next two generations would give segment ``segment``'s file.
        taken = shm_dir / "segments" / f"seg-{2:020d}-{segment:07d}.arrow"
        taken.write_bytes(b"someone else's")
        other = shm_dir / "segments" / "notes.txt"
        other.write_bytes(b"x")
        for value in (2.0, 3.0, 4.0):
            publish_changed(publisher, series_table(dict.fromkeys(IDS, 2), value), {segment})
        assert publisher.generation == 5  # 2 was skipped: its name was taken
        assert taken.read_bytes() == b"someone else's"
        assert other.read_bytes() == b"x"
        assert publisher.strays() == ["segments/notes.txt", f"segments/{taken.name}"]
    snapshot = current(Reader(shm_dir))
    assert snapshot.series_table(IDS[0]).column("demand_mw")[0].as_py() == 4.0  # type: ignore[union-attr]


def test_a_refused_segment_file_skips_its_generation(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    segment = segment_of(IDS[0], SEGMENTS)
    with Publisher(shm_dir, keep=3) as publisher:
        publish_all(publisher, table)
        publish_changed(publisher, series_table(dict.fromkeys(IDS, 2), 2.0), {segment})
        path = shm_dir / "segments" / f"seg-{2:020d}-{segment:07d}.arrow"
        elsewhere = shm_dir.parent / "moved.arrow"
        path.rename(elsewhere)
        path.symlink_to(elsewhere)
        reader = Reader(shm_dir)
        assert current(reader).generation == 1
        assert any("segments/seg-" in reason and "symbolic" in reason for reason in reader.skipped)
        path.unlink()
        fresh = Reader(shm_dir)
        assert current(fresh).generation == 1
        assert any(f"names segments/{path.name}, which is missing" in r for r in fresh.skipped)
        # The publisher goes on; the next generation names a new file for that segment.
        publish_changed(publisher, series_table(dict.fromkeys(IDS, 2), 3.0), {segment})
        assert current(reader).generation == 3


def test_a_segment_file_altered_after_publication_is_refused_when_read(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    with Publisher(shm_dir) as publisher:
        publish_all(publisher, table)
    damaged = segment_of(IDS[0], SEGMENTS)
    path = shm_dir / "segments" / f"seg-{1:020d}-{damaged:07d}.arrow"
    (shm_dir / "segments" / "copy").write_bytes(b"\x00" * path.stat().st_size)
    os.replace(shm_dir / "segments" / "copy", path)
    snapshot = current(Reader(shm_dir))
    with pytest.raises(CorruptGenerationError, match=f"segments/{path.name}"):
        snapshot.series_table(IDS[0])
    intact = next(x for x in IDS if segment_of(x, SEGMENTS) != damaged)
    assert snapshot.series_table(intact) is not None


_ID = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    segments=st.integers(1, 6),
    steps=st.lists(
        st.dictionaries(_ID, st.one_of(st.none(), st.integers(1, 4)), max_size=10),
        min_size=1,
        max_size=6,
    ),
)
def test_lookups_match_a_brute_force_model_over_generations(
    shm_dir: Path, segments: int, steps: list[dict[str, int | None]]
) -> None:
    """Random series sets; each generation changes (adds, resizes, drops) random series and
    rewrites only their segments. After each, every series ever seen reads back as the model
    says, from a reader that followed every generation and from a fresh one."""
    shutil.rmtree(shm_dir, ignore_errors=True)
    rows: dict[str, int] = {}
    values: dict[str, float] = {}
    seen: set[str] = set()
    follower = Reader(shm_dir)
    with Publisher(shm_dir, keep=2) as publisher:
        for number, step in enumerate(steps, start=1):
            for x, count in step.items():
                seen.add(x)
                if count is None:
                    rows.pop(x, None)
                else:
                    rows[x], values[x] = count, float(number)
            model = series_table(rows, values)
            changed = set(range(segments)) if number == 1 else segments_of(list(step), segments)
            publish_changed(publisher, model, changed, segments)
            for reader in (follower, Reader(shm_dir)):
                snapshot = current(reader)
                assert snapshot.series_count == len(rows)
                assert list(snapshot.series_ids()) == sorted(rows)
                for x in seen:
                    expected, got = brute_force(model, x), snapshot.series_table(x)
                    assert (got is None) == (expected is None)
                    assert got is None or got.equals(expected)
                half = sorted(rows)[len(rows) // 2 - 1] if rows else None
                page = [s.series_id for s in snapshot.series_after(half, 3)]
                assert page == [x for x in sorted(rows) if half is None or x > half][:3]
            assert segment_files(shm_dir) == referenced_segment_files(shm_dir)


def test_the_data_checksum_of_a_segmented_generation_combines_its_segments(
    shm_dir: Path,
) -> None:
    table = series_table({x: 1 + n % 4 for n, x in enumerate(IDS)}, 1.0)
    parts = split_by_segment(table, SEGMENTS)
    expected = SegmentsChecksum(SEGMENTS)
    for segment, part in parts.items():
        filled = part is not None and part.num_rows
        expected.set(segment, segment_checksum(part) if filled else None)
    reader = Reader(shm_dir)
    with Publisher(shm_dir) as publisher:
        publish_all(publisher, table)
        assert current(reader).data_checksum() == expected.hexdigest()
        # One segment rewritten, the others carried over: the same combination, updated.
        moved = segment_of(IDS[0], SEGMENTS)
        values = {x: 5.0 if x == IDS[0] else 1.0 for x in IDS}
        table2 = series_table({x: 1 + n % 4 for n, x in enumerate(IDS)}, values)
        publish_changed(publisher, table2, {moved})
        expected.set(moved, segment_checksum(split_by_segment(table2, SEGMENTS)[moved]))
        second = current(reader)
        assert second.segmented and second.data_checksum() == expected.hexdigest()
        publisher.publish(table2)
    inline = current(reader)
    assert not inline.segmented and inline.data_checksum() == table_checksum(table2)


def test_metadata_from_a_function_describes_the_tables_it_follows(shm_dir: Path) -> None:
    table = series_table(dict.fromkeys(IDS, 2), 1.0)
    lazy = LazySegments(table, SEGMENTS)

    def metadata() -> dict[str, str]:
        return {"segments_read": str(len(lazy.requests))}

    with Publisher(shm_dir) as publisher:
        publisher.publish_segments(lazy, segments=SEGMENTS, metadata=metadata)
        assert current(Reader(shm_dir)).metadata == {"segments_read": str(SEGMENTS)}
        for bad, error in (({"shm.x": "1"}, ValueError), ({"rows": 3}, TypeError)):
            with pytest.raises(error):
                publisher.publish_segments(
                    LazySegments(table, SEGMENTS), segments=SEGMENTS, metadata=lambda b=bad: b
                )
            assert publisher.generation == 1 and temp_files(shm_dir) == []
        assert len(segment_files(shm_dir)) == len(segments_of(IDS))
