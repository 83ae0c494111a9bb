"""The reader refuses paths it should not trust, with a clear error and no crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shm import CorruptGenerationError, Publisher, Reader, UnsafePathError
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


def test_generation_symlink_is_refused(shm_dir: Path) -> None:
    path = published(shm_dir)
    target = shm_dir.parent / "elsewhere.arrow"
    path.rename(target)
    (shm_dir / f"gen-{2:020d}.arrow").symlink_to(target)
    with pytest.raises(OSError, match="symbolic links"):
        Reader(shm_dir).current()


def test_world_writable_directory_is_refused(shm_dir: Path) -> None:
    published(shm_dir)
    shm_dir.chmod(0o777)
    with pytest.raises(UnsafePathError, match="writable by every user"):
        Reader(shm_dir).current()


def test_file_of_an_untrusted_owner_is_refused(shm_dir: Path) -> None:
    path = published(shm_dir)
    if os.geteuid() == 0:
        os.chown(path, 54321, -1)
        with pytest.raises(UnsafePathError, match="uid 54321"):
            Reader(shm_dir).current()
    # Without root, exercise the same check by trusting nobody who owns the file.
    with pytest.raises(UnsafePathError, match="owned by uid"):
        Reader(shm_dir, trusted_uids=[path.stat().st_uid + 1]).current()


def test_non_regular_generation_is_refused(shm_dir: Path) -> None:
    published(shm_dir)
    os.mkfifo(shm_dir / f"gen-{7:020d}.arrow")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        Reader(shm_dir, trusted_uids=[os.geteuid()]).current()


def test_garbage_generation_is_a_clear_error_and_the_held_snapshot_survives(
    shm_dir: Path,
) -> None:
    published(shm_dir)
    reader = Reader(shm_dir)
    held = reader.current()
    assert held is not None
    (shm_dir / f"gen-{5:020d}.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(CorruptGenerationError, match="not a valid Arrow IPC file"):
        Reader(shm_dir).current()
    # A file the publisher never announced does not disturb a reader on the fast path.
    assert reader.current() is held
    assert held.table.num_rows == 4
