"""The daemon's configuration edge cases and its claim on SHM_DIR: a clear exit 2 naming the
variable, never a traceback, never a change to a directory it must not adopt."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache_daemon.config import DaemonConfig
from cache_daemon.errors import ConfigError
from cache_daemon.model_watch import FileModelFetcher
from cache_daemon.service import _empty_windows
from cache_daemon.workdir import open_publisher
from shm import Publisher, Reader
from tests.daemon._helpers import spawn
from tests.shm._tables import make_table

MARKER = ".shm-publisher"


def exit_status(env: dict[str, str], log: Path, timeout: float = 30) -> tuple[int, str]:
    proc = spawn({"REPLAY_RATE": "50", **env}, log)
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"still running after {timeout} s:\n{log.read_text()[-2000:]}"
        ) from None
    return code, log.read_text(errors="replace")


def assert_refused(env: dict[str, str], log: Path, variable: str, words: str) -> None:
    code, text = exit_status(env, log)
    assert code == 2, text[-2000:]
    assert "Traceback" not in text, text[-2000:]
    assert f"{variable}: " in text and words in text, text[-2000:]


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"WINDOW_DURATION_S": "1e-300", "WINDOW_ROWS": "0"}, "between"),
        ({"WINDOW_DURATION_S": "1e300"}, "between"),
    ],
)
def test_window_durations_out_of_range_exit_2(
    shm_dir: Path, tmp_path: Path, env: dict[str, str], words: str
) -> None:
    assert_refused({"SHM_DIR": str(shm_dir), **env}, tmp_path / "log", "WINDOW_DURATION_S", words)
    assert not shm_dir.exists()


@settings(max_examples=200, deadline=None)
@given(
    duration=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
    ),
    rows=st.sampled_from(["0", "10"]),
    ttl=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
    ),
)
def test_any_window_duration_is_a_working_window_or_an_error_naming_it(
    duration: str, rows: str, ttl: str
) -> None:
    try:
        config = DaemonConfig.from_env(
            {"WINDOW_DURATION_S": duration, "WINDOW_ROWS": rows, "SERIES_TTL_S": ttl}
        )
    except ConfigError as exc:
        assert exc.variable in ("WINDOW_DURATION_S", "WINDOW_ROWS", "SERIES_TTL_S")
        return
    windows = _empty_windows(config)
    assert windows.columns == ("demand_mw",)
    windows.apply("a", 0, (1.0,))
    windows.apply("b", 2**62, (1.0,))  # far apart: nanosecond arithmetic must not overflow
    assert len(windows) >= 1


def test_model_path_that_is_a_device_or_a_fifo_exits_2_at_once(
    shm_dir: Path, tmp_path: Path
) -> None:
    assert_refused(
        {"SHM_DIR": str(shm_dir), "MODEL_PATH": "/dev/zero"},
        tmp_path / "zero.log",
        "MODEL_PATH",
        "not a regular file",
    )
    fifo = tmp_path / "model.skops"
    os.mkfifo(fifo)
    assert_refused(
        {"SHM_DIR": str(shm_dir), "MODEL_PATH": str(fifo)},
        tmp_path / "fifo.log",
        "MODEL_PATH",
        "not a regular file",
    )


def test_a_model_replaced_by_a_fifo_later_is_an_error_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    os.mkfifo(path)
    (tmp_path / "model.skops.sha256").write_text(hashlib.sha256(b"").hexdigest())
    with pytest.raises(OSError, match="not a regular file"):
        FileModelFetcher(path).fetch()


def test_shm_dir_that_is_a_regular_file_exits_2(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"keep me")
    assert_refused({"SHM_DIR": str(target)}, tmp_path / "log", "SHM_DIR", "not a directory")
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize("root", ["/", "/dev/shm", "/dev/shm/"])
def test_shared_roots_are_refused(root: str) -> None:
    with pytest.raises(ConfigError, match="use a subdirectory") as info:
        open_publisher(Path(root))
    assert info.value.variable == "SHM_DIR"


def test_an_unrelated_directory_is_refused_and_left_untouched(
    shm_dir: Path, tmp_path: Path
) -> None:
    shm_dir.mkdir(mode=0o755)
    files = {
        ".tmp-3-1": b"a temp file of someone else",
        "gen-00000000000000000001.arrow": b"not ours",
        "notes.txt": b"hello",
    }
    for name, data in files.items():
        (shm_dir / name).write_bytes(data)
    assert_refused(
        {"SHM_DIR": str(shm_dir)}, tmp_path / "log", "SHM_DIR", "no publisher created it"
    )
    assert {p.name: p.read_bytes() for p in shm_dir.iterdir()} == files
    assert stat.S_IMODE(shm_dir.stat().st_mode) == 0o755


@pytest.mark.parametrize(
    "stray", ["gen-99999999999999999999.arrow", "gen-18446744073709551615.arrow", "notes.txt"]
)
def test_a_publishers_directory_with_stray_files_is_refused(
    shm_dir: Path, tmp_path: Path, stray: str
) -> None:
    with Publisher(shm_dir) as publisher:
        publisher.publish(make_table(10, 1.0))
    (shm_dir / stray).write_bytes(b"planted")
    assert_refused({"SHM_DIR": str(shm_dir)}, tmp_path / "log", "SHM_DIR", stray)
    assert (shm_dir / stray).read_bytes() == b"planted"
    assert (shm_dir / "gen-00000000000000000001.arrow").exists()


def test_an_empty_precreated_directory_is_adopted_and_marked(shm_dir: Path) -> None:
    shm_dir.mkdir(mode=0o750)
    publisher = open_publisher(shm_dir)
    try:
        assert (shm_dir / MARKER).is_file()
        (shm_dir / "daemon-status.json").write_bytes(b"{}")
        (shm_dir / ("model-" + "a" * 64 + ".skops")).write_bytes(b"m")
        publisher.publish(make_table(10, 1.0))
    finally:
        publisher.close()
    # A restart adopts its own directory, files of the earlier run included.
    again = open_publisher(shm_dir)
    try:
        assert again.generation == 1
        assert Reader(shm_dir).current() is not None
    finally:
        again.close()
