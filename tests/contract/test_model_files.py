"""contract.model_files and the offsets format: what the daemon writes and reads besides the
generation itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract._atomic import temp_target, write_atomic
from contract.metadata import format_offsets, parse_offsets
from contract.model_files import read_regular_file


@given(st.dictionaries(st.integers(0, 1000), st.integers(0, 2**62)))
def test_offsets_round_trip(offsets: dict[int, int]) -> None:
    assert parse_offsets(format_offsets(offsets)) == offsets


def test_a_named_artifact_may_be_a_symlink_only_when_asked(tmp_path: Path) -> None:
    (tmp_path / "target").write_bytes(b"artifact")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert read_regular_file(tmp_path / "link", follow_symlinks=True) == b"artifact"
    with pytest.raises(OSError):
        read_regular_file(tmp_path / "link")


def test_temp_files_name_their_target() -> None:
    assert temp_target(".daemon-status.json.123.part") == "daemon-status.json"
    assert temp_target("daemon-status.json") is None
    assert temp_target(".x.part") is None


def test_write_atomic_leaves_no_temp_file(tmp_path: Path) -> None:
    write_atomic(tmp_path / "f", b"1")
    write_atomic(tmp_path / "f", b"2")
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (tmp_path / "f").read_bytes() == b"2"
