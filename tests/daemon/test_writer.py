"""The window writer: inline or segmented generations, only changed segments written, the
metadata's figures from per-segment ones, failures that lose nothing."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache_daemon.publication import WindowFacts
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.writer import PublishLayout, WindowWriter, segment_count
from contract.series import segment_of
from shm import Publisher, PublishError, Reader, Snapshot, segments_for

MINUTE = 60 * 10**9
T0 = 962_409_600 * 10**9


def windows() -> SeriesWindows:
    return SeriesWindows(["demand_mw"], max_rows=50, max_duration_ns=None)


def describe(facts: WindowFacts) -> dict[str, str]:
    return {
        "rows": str(facts.rows),
        "time_min": str(facts.time_min_ns),
        "time_max": str(facts.time_max_ns),
        "checksum": facts.checksum,
    }


def publish(writer: WindowWriter) -> int:
    generation, _rows = writer.write(describe)
    writer.windows.clear_changed()
    return generation


def current(directory: Path) -> Snapshot:
    snapshot = Reader(directory).current()
    assert snapshot is not None
    return snapshot


def assert_matches(snapshot: Snapshot, held: SeriesWindows) -> None:
    """The generation holds exactly the windows' rows, and its metadata describes them."""
    expected = held.to_table()
    got = snapshot.table.sort_by([("series_id", "ascending"), ("time", "ascending")])
    assert got.equals(expected)
    times = expected.column("time").cast(pa.int64()).to_numpy()
    assert snapshot.metadata["rows"] == str(expected.num_rows)
    assert snapshot.metadata["time_min"] == str(int(times.min()))
    assert snapshot.metadata["time_max"] == str(int(times.max()))
    assert snapshot.metadata["checksum"] == snapshot.data_checksum()


def segment_inodes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (directory / "segments").iterdir()}


@contextlib.contextmanager
def writer_in(directory: Path, layout: PublishLayout) -> Iterator[WindowWriter]:
    with Publisher(directory) as publisher:
        yield WindowWriter(publisher, windows(), layout=layout)


# -- the segment count ----------------------------------------------------------------------


@given(
    series=st.integers(0, 10**7),
    current=st.none() | st.integers(0, 20).map(lambda n: 2**n),
    per=st.integers(1, 300),
)
def test_the_segment_count_grows_at_once_and_shrinks_only_to_a_quarter(
    series: int, current: int | None, per: int
) -> None:
    assert segment_count("inline", series, current, per) is None
    wanted = segments_for(series, per)
    got = segment_count("segmented", series, current, per)
    assert got is not None and got >= wanted
    # A count that holds the series and is less than four times what they need is kept.
    keep = current is not None and wanted <= current < 4 * wanted
    assert got == (current if keep else wanted)
    assert segment_count("auto", series, current, per) == (None if series <= 1 else got)


# -- what is written --------------------------------------------------------------------------


def test_a_change_rewrites_only_the_segment_of_its_series(shm_dir: Path) -> None:
    ids = [f"meter-{n:03d}" for n in range(300)]
    with writer_in(shm_dir, "auto") as writer:
        for n, series_id in enumerate(ids):
            writer.windows.apply(series_id, T0, (float(n),))
        publish(writer)
        before = segment_inodes(shm_dir)
        segments = current(shm_dir).segments
        assert segments == segments_for(len(ids)) and len(before) == segments
        writer.windows.apply(ids[7], T0 + MINUTE, (-1.0,))
        publish(writer)
        after = segment_inodes(shm_dir)
        snapshot = current(shm_dir)
    moved = segment_of(ids[7], segments)
    new = set(after) - set(before)
    assert new == {f"seg-{snapshot.generation:020d}-{moved:07d}.arrow"}
    assert all(after[name] == inode for name, inode in before.items() if name in after)
    assert_matches(snapshot, writer.windows)


@pytest.mark.parametrize(
    ("layout", "series", "segmented"),
    [("auto", 1, False), ("auto", 2, True), ("inline", 5, False), ("segmented", 1, True)],
)
def test_the_layout_setting_chooses_the_file_form(
    shm_dir: Path, layout: PublishLayout, series: int, segmented: bool
) -> None:
    with writer_in(shm_dir, layout) as writer:
        for n in range(series):
            writer.windows.apply(f"s{n}", T0 + n * MINUTE, (float(n),))
        publish(writer)
        snapshot = current(shm_dir)
        assert snapshot.segmented == segmented
        assert_matches(snapshot, writer.windows)


def test_auto_switches_to_segments_and_grows_their_count_with_the_series(shm_dir: Path) -> None:
    with writer_in(shm_dir, "auto") as writer:
        writer.windows.apply("default", T0, (1.0,))
        publish(writer)
        assert not current(shm_dir).segmented
        for n in range(64):  # 65 series: two segments
            writer.windows.apply(f"s{n:02d}", T0, (float(n),))
            publish(writer)
            snapshot = current(shm_dir)
            assert snapshot.segmented and snapshot.segments == segments_for(n + 2)
        assert snapshot.segments == 2
        assert_matches(snapshot, writer.windows)


# -- failures and a model of many publications ----------------------------------------------------

_steps = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 30), st.floats(-5, 5)), max_size=12),
        st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=_steps, layout=st.sampled_from(["auto", "segmented", "inline"]))
def test_every_generation_holds_the_windows_even_after_failed_publications(
    steps: list[tuple[list[tuple[int, int, float]], bool]], layout: PublishLayout
) -> None:
    """Events on up to 41 series, each batch published or failing (ENOSPC): every published
    generation holds exactly the windows' rows, a failed one changes nothing visible and
    loses nothing."""
    with (
        tempfile.TemporaryDirectory(dir="/dev/shm") as tmp,
        writer_in(Path(tmp) / "w", layout) as writer,
        pytest.MonkeyPatch.context() as patch,
    ):
        directory = Path(tmp) / "w"
        held = writer.windows
        visible: pa.Table | None = None
        for events, fails in steps:
            for series, minute, value in events:
                held.apply(f"meter-{series:02d}", T0 + minute * MINUTE, (value,))
            if not held.series_count:
                continue
            if fails:

                def full(*args: object, **kwargs: object) -> None:
                    raise OSError(28, "No space left on device")

                patch.setattr("shm._commit.write_file", full)
                with pytest.raises(PublishError):
                    writer.write(describe)
                patch.undo()
                if visible is not None:
                    got = current(directory).table
                    assert got.sort_by([("series_id", "ascending"), ("time", "ascending")]).equals(
                        visible
                    )
                continue
            publish(writer)
            snapshot = current(directory)
            assert_matches(snapshot, held)
            visible = held.to_table()


def test_the_ledger_figures_match_the_table_of_every_segment(shm_dir: Path) -> None:
    rng = np.random.default_rng(7)
    with writer_in(shm_dir, "segmented") as writer:
        for n in range(200):
            series_id = f"m{int(rng.integers(0, 150))}"
            writer.windows.apply(series_id, T0 + int(rng.integers(0, 500)) * MINUTE, (float(n),))
            if n % 37 == 0:
                publish(writer)
        publish(writer)
        assert_matches(current(shm_dir), writer.windows)
