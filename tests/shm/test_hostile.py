"""Files planted in the directory never pin, mislead or crash a reader, nor break a publisher.

Each case puts something hostile under a generation name, either in place of the file the
publisher announced or under a higher number nobody announced: readers serve the newest valid
generation of the live publisher's epoch and name what they skipped; the publisher keeps
publishing and deletes only what it wrote.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shm import Publisher, Reader
from tests.shm._files import referenced_segment_files, segment_files
from tests.shm._publish import LAYOUTS, publish, value_of
from tests.shm._tables import make_table

YEAR_NS = 365 * 86400 * 10**9


def name(generation: int) -> str:
    return f"gen-{generation:020d}.arrow"


def real_metadata(path: Path) -> dict[bytes, bytes]:
    with pa.memory_map(str(path)) as source:
        return dict(pa.ipc.open_file(source).schema.metadata or {})


def write_arrow(path: Path, table: pa.Table, metadata: dict[bytes, bytes]) -> None:
    with pa.OSFile(str(path), "wb") as sink:
        schema = table.schema.with_metadata(metadata)
        with pa.ipc.new_file(sink, schema) as writer:
            writer.write_table(table.replace_schema_metadata(metadata))


def time_column(kind: str) -> pa.Table:
    good = make_table(4, 10.0)
    if kind == "string":
        column = pa.array(["2000-06-05"] * 4)
    else:
        column = good.column("time").cast(pa.int64())
    return good.set_column(0, "time", column)


def window_problem(schema: pa.Schema) -> str | None:
    time_type = schema.field("time").type if "time" in schema.names else None
    ok = time_type == pa.timestamp("ns", tz="UTC")
    return None if ok else f"column 'time' is {time_type}"


@contextmanager
def live(
    shm_dir: Path, count: int = 3, keep: int = 5, layout: str = "inline"
) -> Iterator[Publisher]:
    """A publisher that already published ``count`` generations (values 1, 2, ...), inline
    or segmented (the files planted in place of generation files are then planted in place
    of manifests)."""
    with Publisher(shm_dir, keep=keep) as publisher:
        for value in range(1, count + 1):
            publish(publisher, layout, 4, float(value))
        yield publisher


# Each planter puts one hostile thing at ``path``; ``real`` is a valid file of the live epoch.
def plant_garbage(path: Path, real: Path) -> None:
    path.write_bytes(b"\x00garbage, not an Arrow file" * 10)


def plant_symlink(path: Path, real: Path) -> None:
    copy = path.parent.parent / f"copy-{path.name}"  # beside the shm directory, in its temp parent
    shutil.copyfile(real, copy)
    path.symlink_to(copy)


def plant_socket(path: Path, real: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sock.close()


def plant_fifo(path: Path, real: Path) -> None:
    os.mkfifo(path, 0o640)


def plant_directory(path: Path, real: Path) -> None:
    path.mkdir()


def metadata_planter(**changes: bytes) -> Callable[[Path, Path], None]:
    def plant(path: Path, real: Path) -> None:
        meta = real_metadata(real)
        meta[b"shm.generation"] = str(int(path.name[4:24])).encode()
        for key, value in changes.items():
            meta[key.replace("_", ".", 1).encode()] = value
        write_arrow(path, make_table(4, 99.0), meta)

    return plant


def non_utf8(path: Path, real: Path) -> None:
    meta = real_metadata(real)
    meta[b"shm.generation"] = str(int(path.name[4:24])).encode()
    meta[b"\xff\xfe"] = b"\xc3\x28"
    write_arrow(path, make_table(4, 99.0), meta)


def schema_planter(kind: str) -> Callable[[Path, Path], None]:
    def plant(path: Path, real: Path) -> None:
        meta = real_metadata(real)
        meta[b"shm.generation"] = str(int(path.name[4:24])).encode()
        write_arrow(path, time_column(kind), meta)

    return plant


PLANTERS = {
    "garbage": plant_garbage,
    "symlink": plant_symlink,
    "socket": plant_socket,
    "fifo": plant_fifo,
    "directory": plant_directory,
    "generation-abc": metadata_planter(shm_generation=b"abc"),
    "published-at-30-digits": metadata_planter(shm_published_at_ns=b"9" * 30),
    "epoch-missing": metadata_planter(shm_epoch=b""),
    "epoch-other": metadata_planter(shm_epoch=b"1-00000000000000ff"),
    "non-utf8-metadata": non_utf8,
    "time-as-string": schema_planter("string"),
    "time-as-int64": schema_planter("int64"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", sorted(PLANTERS))
def test_a_bad_announced_file_is_skipped_for_the_newest_valid_one(
    shm_dir: Path, kind: str, layout: str
) -> None:
    with live(shm_dir, count=3, layout=layout) as publisher:
        reader = Reader(shm_dir, check_schema=window_problem)
        newest = shm_dir / name(3)
        real = shm_dir.parent / "real.arrow"
        shutil.copyfile(newest, real)
        newest.unlink()
        PLANTERS[kind](newest, real)
        snapshot = reader.current()
        assert snapshot is not None and snapshot.generation == 2, reader.skipped
        assert value_of(snapshot, layout) == 2.0
        assert len(reader.skipped) == 1 and reader.skipped[0].startswith(name(3)), reader.skipped
        # Settled: the reader does not look again until the publisher announces more...
        assert reader.current() is snapshot
        # ...and follows it when it does.
        assert publish(publisher, layout, 4, 4.0) == 4
        following = reader.current()
        assert following is not None and following.generation == 4
        assert value_of(following, layout) == 4.0


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", sorted(PLANTERS))
def test_a_bad_higher_file_never_pins_readers_nor_breaks_the_publisher(
    shm_dir: Path, kind: str, layout: str
) -> None:
    with live(shm_dir, count=2, keep=2, layout=layout) as publisher:
        reader = Reader(shm_dir, check_schema=window_problem)
        assert reader.current() is not None
        planted = shm_dir / name(10**12)
        PLANTERS[kind](planted, shm_dir / name(2))
        for value in (3.0, 4.0, 5.0):
            generation = publish(publisher, layout, 4, value)
            snapshot = reader.current()
            assert snapshot is not None and snapshot.generation == generation
            assert value_of(snapshot, layout) == value
            assert reader.skipped == (
                f"{name(10**12)}: above the newest generation the publisher announced",
            )
        assert os.path.lexists(planted)  # not the publisher's to delete
        assert sorted(p.name for p in shm_dir.glob("gen-*")) == [name(4), name(5), name(10**12)]


def test_a_valid_far_future_copy_with_the_live_epoch_is_ignored_and_never_pruned(
    shm_dir: Path,
) -> None:
    """The review's case: a valid file, values x10, published 50 years ahead, generation
    10**12, with the live epoch copied from a real file; two of them."""
    with live(shm_dir, count=2, keep=2) as publisher:
        reader = Reader(shm_dir)
        held = reader.current()
        assert held is not None and held.generation == 2
        for generation in (10**12, 10**12 + 1):
            meta = real_metadata(shm_dir / name(2))
            meta[b"shm.generation"] = str(generation).encode()
            meta[b"shm.published_at_ns"] = str(time.time_ns() + 50 * YEAR_NS).encode()
            write_arrow(shm_dir / name(generation), make_table(4, 20.0), meta)
        assert reader.current() is held
        assert Reader(shm_dir).current().generation == 2  # type: ignore[union-attr]
        for value in (3.0, 4.0):
            publisher.publish(make_table(4, value))
            snapshot = reader.current()
            assert snapshot is not None and snapshot.table.column("demand_mw")[0].as_py() == value
        names = sorted(p.name for p in shm_dir.glob("gen-*"))
        assert names == [name(3), name(4), name(10**12), name(10**12 + 1)]
        for generation in (10**12, 10**12 + 1):
            (shm_dir / name(generation)).unlink()
        assert reader.current().generation == 4  # type: ignore[union-attr]


@pytest.mark.parametrize("huge", [18446744073709551615, 99999999999999999999])
def test_planted_huge_generation_names_change_nothing_for_the_publisher(
    shm_dir: Path, huge: int
) -> None:
    with live(shm_dir, count=1):
        pass
    (shm_dir / name(huge)).write_bytes(b"x")
    with Publisher(shm_dir) as publisher:
        assert publisher.generation == 1
        assert publisher.publish(make_table(4, 2.0)) == 2
        assert publisher.strays() == [name(huge)]
    snapshot = Reader(shm_dir).current()
    assert snapshot is not None and snapshot.generation == 2
    assert (shm_dir / name(huge)).read_bytes() == b"x"


def test_a_name_taken_by_a_foreign_file_is_skipped_by_the_publisher(shm_dir: Path) -> None:
    with live(shm_dir, count=1) as publisher:
        (shm_dir / name(2)).mkdir()
        (shm_dir / name(3)).write_bytes(b"someone else's")
        assert publisher.publish(make_table(4, 2.0)) == 4
        snapshot = Reader(shm_dir).current()
        assert snapshot is not None and snapshot.generation == 4
        assert (shm_dir / name(3)).read_bytes() == b"someone else's"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_restart_on_a_wiped_directory_is_followed_at_once(shm_dir: Path, layout: str) -> None:
    with live(shm_dir, count=76, layout=layout):
        pass
    reader = Reader(shm_dir, recheck_s=0.05)
    held = reader.current()
    assert held is not None and held.generation == 76
    shutil.rmtree(shm_dir)
    with Publisher(shm_dir) as publisher:
        assert publish(publisher, layout, 4, 1000.0) == 1
        time.sleep(0.1)
        snapshot = reader.current()
        assert snapshot is not None and snapshot.generation == 1
        assert snapshot.epoch != held.epoch and snapshot.epoch == publisher.epoch
        assert value_of(snapshot, layout) == 1000.0


def test_recheck_makes_the_next_read_follow_a_replaced_directory(shm_dir: Path) -> None:
    with live(shm_dir, count=3):
        pass
    reader = Reader(shm_dir, recheck_s=3600.0)  # its periodic check never comes here
    held = reader.current()
    assert held is not None and held.generation == 3
    shutil.rmtree(shm_dir)
    with Publisher(shm_dir) as publisher:
        assert publisher.publish(make_table(4, 9.0)) == 1
        assert reader.current() is held  # the old directory's hint is still mapped
        reader.recheck()
        snapshot = reader.current()
        assert snapshot is not None and snapshot.generation == 1
        assert snapshot.epoch == publisher.epoch != held.epoch


def test_a_restart_that_lost_the_hint_is_followed_despite_lower_numbers(shm_dir: Path) -> None:
    with live(shm_dir, count=5, keep=2):
        pass
    reader = Reader(shm_dir, recheck_s=0.05)
    assert reader.current().generation == 5  # type: ignore[union-attr]
    (shm_dir / "generation.hint").unlink()
    with Publisher(shm_dir) as publisher:
        # Numbering starts again; files of the earlier run are adopted and pruned.
        assert publisher.publish(make_table(4, 7.0)) == 1
        assert publisher.publish(make_table(4, 8.0)) == 2
        time.sleep(0.1)
        snapshot = reader.current()
        assert (
            snapshot is not None and snapshot.generation == 2 and snapshot.epoch == publisher.epoch
        )
        assert sorted(p.name for p in shm_dir.glob("gen-*")) == [name(1), name(2)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_new_publisher_is_followed_and_its_predecessors_files_are_pruned(
    shm_dir: Path, layout: str
) -> None:
    with live(shm_dir, count=3, keep=2, layout=layout) as first:
        old_epoch = first.epoch
    reader = Reader(shm_dir)
    assert reader.current().generation == 3  # type: ignore[union-attr]
    with Publisher(shm_dir, keep=2) as second:
        assert second.epoch > old_epoch
        # Until it publishes, readers keep the last generation and a new reader finds it.
        assert reader.current().generation == 3  # type: ignore[union-attr]
        assert Reader(shm_dir).current().generation == 3  # type: ignore[union-attr]
        assert publish(second, layout, 4, 4.0) == 4
        assert reader.current().epoch == second.epoch  # type: ignore[union-attr]
        publish(second, layout, 4, 5.0)
    assert sorted(p.name for p in shm_dir.glob("gen-*")) == [name(4), name(5)]
    # The predecessor's segment files went with its generations.
    assert segment_files(shm_dir) == referenced_segment_files(shm_dir)
    assert all(not n.startswith(f"seg-{1:020d}") for n in segment_files(shm_dir))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=4096), higher=st.booleans())
def test_any_bytes_as_a_generation_file_are_skipped(
    shm_dir: Path, data: bytes, higher: bool
) -> None:
    shutil.rmtree(shm_dir, ignore_errors=True)
    with live(shm_dir, count=2) as publisher:
        target = shm_dir / name(10**9 if higher else 2)
        target.unlink(missing_ok=True)
        target.write_bytes(data)
        reader = Reader(shm_dir)
        snapshot = reader.current()
        assert snapshot is not None and snapshot.generation == (2 if higher else 1)
        assert len(reader.skipped) == 1
        assert publisher.publish(make_table(4, 3.0)) == 3
        assert reader.current().generation == 3  # type: ignore[union-attr]
