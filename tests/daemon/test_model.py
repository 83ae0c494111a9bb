"""Model artifacts from a local file: verification, installation, pick-up of a new version."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from cache_daemon.errors import ArtifactError
from cache_daemon.model_watch import FileModelFetcher, ModelWatcher, install_model
from contract.model_files import model_file_name, prune_model_files


def write_artifact(path: Path, data: bytes, *, digest: str | None = None) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path.write_bytes(data)
    path.with_name(path.name + ".sha256").write_text(f"{digest or sha}  {path.name}\n")
    return sha


def test_verified_artifact_is_installed_atomically_with_mode_0640(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    sha = write_artifact(tmp_path / "m.skops", b"model-one")
    info = install_model(shm, FileModelFetcher(tmp_path / "m.skops").fetch())
    assert info.sha256 == sha
    assert info.file == model_file_name(sha)
    assert info.version == f"sha256:{sha[:12]}"
    installed = shm / info.file
    assert installed.read_bytes() == b"model-one"
    assert installed.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in shm.iterdir()] == [info.file]  # no temp file left


def test_digest_mismatch_is_refused_and_nothing_installed(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    write_artifact(tmp_path / "m.skops", b"tampered", digest="0" * 64)
    with pytest.raises(ArtifactError, match="does not match"):
        install_model(shm, FileModelFetcher(tmp_path / "m.skops").fetch())
    assert list(shm.iterdir()) == []


@pytest.mark.parametrize("sidecar", ["", "not-a-digest", "ABC"])
def test_malformed_sidecar_is_refused(tmp_path: Path, sidecar: str) -> None:
    (tmp_path / "m.skops").write_bytes(b"x")
    (tmp_path / "m.skops.sha256").write_text(sidecar)
    with pytest.raises(ArtifactError, match="64-hex"):
        FileModelFetcher(tmp_path / "m.skops").fetch()


def test_missing_sidecar_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "m.skops").write_bytes(b"x")
    with pytest.raises(FileNotFoundError):
        FileModelFetcher(tmp_path / "m.skops").fetch()


def test_watcher_installs_only_on_change(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    artifact = tmp_path / "m.skops"
    write_artifact(artifact, b"one")
    watcher = ModelWatcher(FileModelFetcher(artifact), shm, interval_s=60)
    first = watcher.check()
    assert first is not None
    assert watcher.check() is None
    sha2 = write_artifact(artifact, b"two, longer")
    os.utime(artifact, ns=(1, 1))
    second = watcher.check()
    assert second is not None and second.sha256 == sha2


def test_watcher_thread_delivers_new_models(tmp_path: Path) -> None:
    shm = tmp_path / "shm"
    shm.mkdir()
    artifact = tmp_path / "m.skops"
    sha = write_artifact(artifact, b"one")
    watcher = ModelWatcher(FileModelFetcher(artifact), shm, interval_s=0.05)
    watcher.start()
    try:
        deadline = time.monotonic() + 5
        info = None
        while info is None and time.monotonic() < deadline:
            info = watcher.take()
            time.sleep(0.02)
        assert info is not None and info.sha256 == sha
    finally:
        watcher.stop()


def test_prune_keeps_named_models_only(tmp_path: Path) -> None:
    names = [model_file_name(c * 64) for c in "abc"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "other.txt").write_bytes(b"x")
    prune_model_files(tmp_path, {names[1]})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names[1], "other.txt"])
