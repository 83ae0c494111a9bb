"""The contract types: what one side writes, the other reads back unchanged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.errors import ConfigError
from contract.metadata import Counters, GenerationMeta
from contract.model_files import (
    install_model_file,
    model_file_name,
    model_file_sha256,
    prune_model_files,
    read_model_file,
)
from contract.settings import SharedSettings
from contract.status import STATUS_FILE, DaemonStatus, read_status, write_status

_text = st.text(max_size=20)
_counters = st.builds(
    Counters,
    events=st.integers(0, 2**40),
    dead_letters=st.dictionaries(st.text(min_size=1, max_size=8), st.integers(0, 99)),
    dropped_late=st.integers(0, 99),
    publish_errors=st.integers(0, 99),
    series_expired=st.integers(0, 2**40),
)


@given(
    offsets=st.dictionaries(st.integers(0, 64), st.integers(0, 2**40)),
    text=_text,
    rows=st.integers(0, 10**7),
    series=st.integers(0, 10**7),
    counters=_counters,
)
def test_generation_metadata_round_trips(
    offsets: dict[int, int], text: str, rows: int, series: int, counters: Counters
) -> None:
    meta = GenerationMeta(
        offsets=offsets,
        topic=text,
        source="kafka",
        state="live",
        rows=rows,
        series=series,
        time_min="2000-01-01T00:00:00+00:00",
        time_max=text,
        schema_fingerprint="ab",
        model_version=text,
        model_sha256="0" * 64,
        model_file=model_file_name("0" * 64),
        window_checksum="c",
        counters=counters,
    )
    wire = meta.to_metadata()
    assert all(isinstance(v, str) for v in wire.values())
    assert GenerationMeta.from_metadata(wire) == meta


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=30)))
def test_any_metadata_reads_without_raising(raw: dict[str, str]) -> None:
    meta = GenerationMeta.from_metadata(raw)
    assert meta.rows >= 0 and meta.series >= 0
    assert meta.offsets is None or all(p >= 0 and o >= 0 for p, o in meta.offsets.items())


def test_missing_metadata_reads_as_empty() -> None:
    meta = GenerationMeta.from_metadata({"offsets": "not json", "rows": "-3"})
    assert (meta.offsets, meta.rows, meta.model_file, meta.counters) == (None, 0, "", Counters())
    assert meta.series == 0  # a generation written before series were counted


@pytest.mark.parametrize("raw", ["²", "٣", "1.5", " 7", "-1", ""])
def test_malformed_counts_read_as_zero(raw: str) -> None:
    meta = GenerationMeta.from_metadata({"rows": raw, "series": raw})
    assert (meta.rows, meta.series) == (0, 0)


def test_counters_of_an_older_daemon_read_with_zero_series_expired() -> None:
    old = '{"events":5,"dead_letters":{"bad_json":1},"dropped_late":2,"publish_errors":0}'
    counters = Counters.from_json(old)
    assert counters == Counters(events=5, dead_letters={"bad_json": 1}, dropped_late=2)
    assert counters.as_dict()["series_expired"] == 0


def test_status_written_and_read(tmp_path: Path) -> None:
    status = DaemonStatus(
        state="live",
        source="kafka",
        pid=os.getpid(),
        started_ns=1,
        heartbeat_ns=2,
        last_publish_ns=None,
        generation=7,
        lag={"0": 3},
        counters=Counters(events=5, dead_letters={"bad_json": 1}),
        last_error=None,
    )
    write_status(tmp_path, status)
    path = tmp_path / STATUS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert DaemonStatus.from_bytes(path.read_bytes()) == status
    raw = read_status(tmp_path)
    assert raw is not None and raw["state"] == "live" and raw["generation"] == 7
    assert DaemonStatus.from_bytes(status.with_state("crashed").to_json()) == DaemonStatus(
        **{**vars_of(status), "state": "crashed"}
    )


def vars_of(status: DaemonStatus) -> dict[str, object]:
    return {name: getattr(status, name) for name in DaemonStatus.__slots__}


@pytest.mark.parametrize(
    "content", [b"", b"[]", b"{", b'{"state": 3, "generation": "7", "lag": [1]}', b"\xff"]
)
def test_malformed_status_reads_as_absent_fields(content: bytes) -> None:
    status = DaemonStatus.from_bytes(content)
    assert status is None or (status.state, status.generation, status.lag) == (None, None, {})


def test_model_files_are_installed_once_and_read_back(tmp_path: Path) -> None:
    name, digest = install_model_file(tmp_path, b"artifact")
    assert model_file_sha256(name) == digest and name == model_file_name(digest)
    assert read_model_file(tmp_path, name) == b"artifact"
    assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o640
    (tmp_path / name).write_bytes(b"torn")  # a torn or planted file is replaced
    assert install_model_file(tmp_path, b"artifact") == (name, digest)
    assert read_model_file(tmp_path, name) == b"artifact"
    prune_model_files(tmp_path, keep=set())
    assert list(tmp_path.iterdir()) == []


def test_model_file_reader_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    name = model_file_name("a" * 64)
    os.mkfifo(tmp_path / name)
    with pytest.raises(OSError, match="not a regular file"):
        read_model_file(tmp_path, name)
    (tmp_path / name).unlink()
    (tmp_path / name).write_bytes(b"x" * 10)
    with pytest.raises(OSError, match="larger than"):
        read_model_file(tmp_path, name, max_bytes=5)
    (tmp_path / "target").write_bytes(b"x")
    (tmp_path / name).unlink()
    (tmp_path / name).symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        read_model_file(tmp_path, name)
    assert model_file_sha256("model-xyz.skops") is None


def test_shared_settings_defaults_and_errors() -> None:
    s = SharedSettings.from_env({"SHM_DIR": "  ", "LOG_LEVEL": "debug"})
    assert (s.shm_dir, s.max_data_age_ms, s.log_level) == (
        Path("/dev/shm/shm-forecast"),
        10_000,
        "DEBUG",
    )
    for env, variable in (
        ({"MAX_DATA_AGE_MS": "soon"}, "MAX_DATA_AGE_MS"),
        ({"MAX_DATA_AGE_MS": "99"}, "MAX_DATA_AGE_MS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
    ):
        with pytest.raises(ConfigError) as info:
            SharedSettings.from_env(env)
        assert info.value.variable == variable
        assert str(info.value).startswith(f"{variable}: ")
