"""A full tmpfs: the publish fails cleanly, the last good generation stays live, then recovers."""

from __future__ import annotations

import errno
import gc
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from shm import Publisher, PublishError, Reader
from tests.shm._files import referenced_segment_files, segment_files, temp_files
from tests.shm._publish import LAYOUTS, publish, value_of


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


@pytest.fixture
def tiny_tmpfs() -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test (needs root, which this suite's machines have)."""
    mountpoint = Path(tempfile.mkdtemp(prefix="shm-tiny-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0750", "tmpfs", str(mountpoint)],
        check=True,
    )
    try:
        yield mountpoint
    finally:
        gc.collect()  # drop the test's mappings so the mount is not busy
        if subprocess.run(["umount", str(mountpoint)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=True)
        mountpoint.rmdir()


@pytest.mark.skipif(not _can_mount(), reason="mounting a tmpfs needs root; see the rlimit test")
@pytest.mark.parametrize("layout", LAYOUTS)
def test_full_tmpfs_keeps_the_last_generation_and_recovers(tiny_tmpfs: Path, layout: str) -> None:
    directory = tiny_tmpfs / "window"
    reader = Reader(directory)
    with Publisher(directory, keep=1) as publisher:
        publish(publisher, layout, 20_000, 1.0)  # ~320 KB
        # 200k rows x 16 bytes = 3.2 MB: larger than the whole filesystem.
        with pytest.raises(PublishError, match="stays live") as caught:
            publish(publisher, layout, 200_000, 2.0)
        assert caught.value.errno == errno.ENOSPC
        assert temp_files(directory) == []
        assert segment_files(directory) == referenced_segment_files(directory)
        snapshot = reader.current()
        assert snapshot is not None
        assert snapshot.generation == 1
        assert value_of(snapshot, layout) == 1.0
        # Space is back (a smaller window fits): publishing resumes with the next generation.
        assert publish(publisher, layout, 20_000, 3.0) == 2
    snapshot = reader.current()
    assert snapshot is not None
    assert snapshot.generation == 2
    assert value_of(snapshot, layout) == 3.0
    assert segment_files(directory) == referenced_segment_files(directory)


def _publish_over_limit(directory: str, layout: str) -> None:
    """Runs in a child with a 1 MiB file-size limit: the second publish must fail cleanly."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    with Publisher(directory) as publisher:
        publish(publisher, layout, 10_000, 1.0)
        try:
            publish(publisher, layout, 200_000, 2.0)
        except PublishError as exc:
            os._exit(10 if exc.errno == errno.EFBIG else 11)
    os._exit(12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_write_failure_at_the_os_boundary_leaves_no_partial_file(
    shm_dir: Path, layout: str
) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            _publish_over_limit(str(shm_dir), layout)
        finally:
            os._exit(13)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 10
    assert sorted(p.name for p in shm_dir.iterdir() if p.name.endswith(".arrow")) == [
        f"gen-{1:020d}.arrow"
    ]
    assert temp_files(shm_dir) == []
    assert segment_files(shm_dir) == referenced_segment_files(shm_dir)
    snapshot = Reader(shm_dir).current()
    assert snapshot is not None
    assert snapshot.generation == 1
    assert value_of(snapshot, layout) == 1.0
