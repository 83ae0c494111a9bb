"""The reader refuses paths it should not trust, with a clear error and no crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shm import Publisher, Reader, UnsafePathError
from tests.shm._tables import make_table


def published(shm_dir: Path) -> Path:
    with Publisher(shm_dir) as publisher:
        generation = publisher.publish(make_table(4))
    return shm_dir / f"gen-{generation:020d}.arrow"


def test_directory_symlink_is_refused(shm_dir: Path) -> None:
    published(shm_dir)
    link = shm_dir.parent / "link"
    link.symlink_to(shm_dir)
    with pytest.raises(UnsafePathError, match="symlink"):
        Reader(link).current()
    with pytest.raises(UnsafePathError, match="symlink"):
        Publisher(link)


def test_generation_symlink_is_skipped_and_named(shm_dir: Path) -> None:
    path = published(shm_dir)
    target = shm_dir.parent / "elsewhere.arrow"
    path.rename(target)
    (shm_dir / f"gen-{2:020d}.arrow").symlink_to(target)
    path.symlink_to(target)  # the announced name itself
    reader = Reader(shm_dir)
    assert reader.current() is None
    assert any("symbolic links" in reason for reason in reader.skipped), reader.skipped
    assert any(f"gen-{2:020d}.arrow: above the newest generation" in r for r in reader.skipped)


def test_world_writable_directory_is_refused(shm_dir: Path) -> None:
    published(shm_dir)
    shm_dir.chmod(0o777)
    with pytest.raises(UnsafePathError, match="writable by every user"):
        Reader(shm_dir).current()


def test_file_of_an_untrusted_owner_is_skipped_and_named(shm_dir: Path) -> None:
    path = published(shm_dir)
    if os.geteuid() == 0:
        os.chown(path, 54321, -1)
        reader = Reader(shm_dir)
        assert reader.current() is None
        assert any("uid 54321" in reason for reason in reader.skipped), reader.skipped
    # Without root, exercise the same check by trusting nobody who owns the file.
    reader = Reader(shm_dir, trusted_uids=[path.stat().st_uid + 1])
    assert reader.current() is None
    assert any("owned by uid" in reason for reason in reader.skipped), reader.skipped


def test_non_regular_generation_is_skipped(shm_dir: Path) -> None:
    published(shm_dir)
    os.mkfifo(shm_dir / f"gen-{7:020d}.arrow")
    reader = Reader(shm_dir, trusted_uids=[os.geteuid()])
    snapshot = reader.current()
    assert snapshot is not None and snapshot.generation == 1
    assert reader.skipped == (
        f"gen-{7:020d}.arrow: above the newest generation the publisher announced",
    )


def test_garbage_generation_is_skipped_and_the_held_snapshot_survives(
    shm_dir: Path,
) -> None:
    published(shm_dir)
    reader = Reader(shm_dir)
    held = reader.current()
    assert held is not None
    # Garbage in place of the announced (newest) file: a fresh reader has nothing valid.
    (shm_dir / f"gen-{1:020d}.arrow").write_bytes(b"not arrow at all")
    fresh = Reader(shm_dir)
    assert fresh.current() is None
    assert any("not a valid Arrow IPC file" in reason for reason in fresh.skipped)
    # A reader on the fast path keeps what it holds.
    assert reader.current() is held
    assert held.table.num_rows == 4
