"""Round trip, file format, retention, monotonic generations, locking and metadata."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from shm import Publisher, PublisherLockedError, Reader, table_checksum
from tests.shm._tables import make_table


def gen_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("gen-"))


def test_reader_sees_nothing_before_first_publication(shm_dir: Path) -> None:
    assert Reader(shm_dir).current() is None  # directory does not even exist yet
    Publisher(shm_dir).close()
    assert Reader(shm_dir).current() is None


def test_round_trip_keeps_data_metadata_and_publish_time(shm_dir: Path) -> None:
    table = make_table(1_000, value=3.5)
    with Publisher(shm_dir) as publisher:
        generation = publisher.publish(table, metadata={"source": "replay", "rows": "1000"})
    snapshot = Reader(shm_dir).current()
    assert snapshot is not None
    assert generation == snapshot.generation == 1
    assert snapshot.table.equals(table)
    assert snapshot.metadata == {"source": "replay", "rows": "1000"}
    assert snapshot.published_at_ns > 0
    assert snapshot.data_checksum() == table_checksum(table)


def test_file_is_one_uncompressed_record_batch(shm_dir: Path) -> None:
    chunked = pa.concat_tables([make_table(100, 1.0), make_table(100, 2.0)])
    assert chunked.column(0).num_chunks == 2
    with Publisher(shm_dir) as publisher:
        generation = publisher.publish(chunked)
    path = shm_dir / f"gen-{generation:020d}.arrow"
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        assert reader.num_record_batches == 1
        # Uncompressed: the file holds at least the raw bytes of both columns.
        assert path.stat().st_size >= chunked.nbytes
    snapshot = Reader(shm_dir).current()
    assert snapshot is not None
    assert all(column.num_chunks == 1 for column in snapshot.table.columns)


def test_empty_table_publishes(shm_dir: Path) -> None:
    with Publisher(shm_dir) as publisher:
        publisher.publish(make_table(0))
    snapshot = Reader(shm_dir).current()
    assert snapshot is not None
    assert snapshot.table.num_rows == 0
    assert snapshot.table.schema.names == ["time", "demand_mw"]


def test_reader_follows_new_generations_and_keeps_only_k_files(shm_dir: Path) -> None:
    reader = Reader(shm_dir)
    with Publisher(shm_dir, keep=3) as publisher:
        for value in range(1, 8):
            publisher.publish(make_table(10, float(value)))
            snapshot = reader.current()
            assert snapshot is not None
            assert snapshot.generation == value
            assert snapshot.table.column("demand_mw")[0].as_py() == float(value)
            assert len(gen_files(shm_dir)) == min(value, 3)
    assert gen_files(shm_dir) == [f"gen-{g:020d}.arrow" for g in (5, 6, 7)]


def test_unchanged_generation_returns_the_same_snapshot_object(shm_dir: Path) -> None:
    with Publisher(shm_dir) as publisher:
        publisher.publish(make_table(10))
        reader = Reader(shm_dir)
        first = reader.current()
        assert first is not None
        assert reader.current() is first
        publisher.publish(make_table(10))
        second = reader.current()
        assert second is not None
        assert second is not first
        assert second.generation == first.generation + 1


def test_superseded_generation_stays_readable_while_held(shm_dir: Path) -> None:
    with Publisher(shm_dir, keep=1) as publisher:
        publisher.publish(make_table(50_000, 1.0))
        held = Reader(shm_dir).current()
        assert held is not None
        for value in (2.0, 3.0, 4.0):
            publisher.publish(make_table(50_000, value))
    assert gen_files(shm_dir) == [f"gen-{4:020d}.arrow"]
    # The file of generation 1 is unlinked, its pages live on through the mapping.
    assert pa.compute.sum(held.table.column("demand_mw")).as_py() == 50_000.0


def test_generations_stay_monotonic_across_publisher_restarts(shm_dir: Path) -> None:
    with Publisher(shm_dir) as publisher:
        for _ in range(3):
            publisher.publish(make_table(5))
    with Publisher(shm_dir) as publisher:
        assert publisher.generation == 3
        assert publisher.publish(make_table(5)) == 4
    for path in shm_dir.glob("gen-*"):
        path.unlink()
    # Even with every data file gone, the hint remembers the last generation.
    with Publisher(shm_dir) as publisher:
        assert publisher.publish(make_table(5)) == 5


def test_reader_never_goes_back_to_a_lower_generation(shm_dir: Path) -> None:
    reader = Reader(shm_dir)
    with Publisher(shm_dir, keep=5) as publisher:
        for _ in range(3):
            publisher.publish(make_table(5))
    snapshot = reader.current()
    assert snapshot is not None
    assert snapshot.generation == 3
    (shm_dir / f"gen-{3:020d}.arrow").unlink()
    (shm_dir / "generation.hint").write_bytes((2).to_bytes(8, "little"))
    again = reader.current()
    assert again is not None
    assert again.generation == 3


def test_second_publisher_is_refused_until_the_first_closes(shm_dir: Path) -> None:
    first = Publisher(shm_dir)
    with pytest.raises(PublisherLockedError, match="another publisher"):
        Publisher(shm_dir)
    first.close()
    with Publisher(shm_dir) as second:
        assert second.publish(make_table(1)) == 1


def test_stale_temp_files_are_removed_and_never_read(shm_dir: Path) -> None:
    shm_dir.mkdir(mode=0o750)
    stale = shm_dir / ".tmp-9-12345"
    stale.write_bytes(b"half a file")
    reader = Reader(shm_dir)
    assert reader.current() is None
    with Publisher(shm_dir) as publisher:
        assert not stale.exists()
        publisher.publish(make_table(3))
    snapshot = reader.current()
    assert snapshot is not None
    assert snapshot.generation == 1


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        ({"shm.generation": "9"}, ValueError),
        ({"rows": 3}, TypeError),
    ],
)
def test_bad_metadata_is_refused_before_writing(
    shm_dir: Path, metadata: dict[str, object], error: type[Exception]
) -> None:
    with Publisher(shm_dir) as publisher:
        with pytest.raises(error):
            publisher.publish(make_table(1), metadata=metadata)  # type: ignore[arg-type]
        assert publisher.generation == 0
    assert gen_files(shm_dir) == []


def test_modes_are_private_whatever_the_umask(shm_dir: Path) -> None:
    old = os.umask(0)
    try:
        with Publisher(shm_dir) as publisher:
            generation = publisher.publish(make_table(1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(shm_dir.stat().st_mode) == 0o750
    for path in shm_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path.name
    assert (shm_dir / f"gen-{generation:020d}.arrow").exists()


def test_keep_must_be_positive(shm_dir: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        Publisher(shm_dir, keep=0)
