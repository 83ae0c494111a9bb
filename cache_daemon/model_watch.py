"""Model artifacts: fetch, verify by SHA-256, install beside the data, watch for new versions.

The daemon never loads a model; it moves verified bytes. The expected digest comes from a
sidecar next to the artifact: the object ``<MODEL_KEY>.sha256`` (or the file
``<MODEL_PATH>.sha256``) whose first token is the 64-hex SHA-256 (``sha256sum`` output works).
An artifact whose digest differs, or without a sidecar, is refused and never installed.

A verified artifact is installed in the shm directory by
:func:`contract.model_files.install_model_file` (atomic, mode 0640, named by its digest) and
announced through the next generation's metadata (``model_version``,
``model_sha256``, ``model_file``). ``model_version`` is the object's user metadata
``model-version`` when present, else ``sha256:<first 12 hex digits>``.

A :class:`ModelWatcher` thread polls the source's identity (ETag + version id, or mtime + size +
inode) every interval and installs a new artifact when it changes; failures are retried with
backoff and reported through :attr:`ModelWatcher.error`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cache_daemon.errors import ArtifactError, StoreError
from cache_daemon.publication import ModelInfo
from contract.model_files import MAX_MODEL_BYTES, install_model_file, read_regular_file
from objectstore import ObjectStore

__all__ = [
    "Fetched",
    "FileModelFetcher",
    "ModelFetcher",
    "ModelWatcher",
    "S3ModelFetcher",
    "install_model",
    "verify_artifact",
]

log = logging.getLogger(__name__)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SIDECAR_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Fetched:
    """Artifact bytes with the digest the sidecar promises and a version label."""

    data: bytes
    expected_sha256: str
    version: str | None


class ModelFetcher(Protocol):
    """Where artifacts come from. Methods raise StoreError/OSError/ArtifactError on failure."""

    def identity(self) -> str:
        """A cheap token that changes whenever the artifact is replaced."""

    def fetch(self) -> Fetched:
        """The artifact and its expected digest."""


def parse_sidecar(text: bytes, where: str) -> str:
    """The digest in a ``.sha256`` sidecar (first whitespace-separated token)."""
    tokens = text.decode("ascii", errors="replace").split()
    digest = tokens[0].lower() if tokens else ""
    if not _HEX64.fullmatch(digest):
        raise ArtifactError(f"{where} does not start with a 64-hex SHA-256 digest")
    return digest


class S3ModelFetcher:
    """Artifact at ``s3://bucket/key`` with its digest in ``s3://bucket/key.sha256``."""

    def __init__(self, store: ObjectStore, bucket: str, key: str) -> None:
        self._store, self._bucket, self._key = store, bucket, key

    def identity(self) -> str:
        """ETag and version id of the artifact object."""
        stat = self._store.stat(self._bucket, self._key)
        return f"{stat.etag}/{stat.version_id or ''}"

    def fetch(self) -> Fetched:
        """Read the artifact, then its sidecar."""
        obj = self._store.get(self._bucket, self._key, max_bytes=MAX_MODEL_BYTES)
        sidecar_key = f"{self._key}.sha256"
        sidecar = self._store.get(self._bucket, sidecar_key, max_bytes=_SIDECAR_BYTES)
        expected = parse_sidecar(sidecar.data, f"s3://{self._bucket}/{sidecar_key}")
        return Fetched(obj.data, expected, obj.metadata.get("model-version"))


class FileModelFetcher:
    """Artifact at ``path`` with its digest in ``path.sha256``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def identity(self) -> str:
        """Modification time, size and inode of the artifact file."""
        st = self._path.stat()
        return f"{st.st_mtime_ns}/{st.st_size}/{st.st_ino}"

    def fetch(self) -> Fetched:
        """Read the artifact, then its sidecar (each a regular file of bounded size; a FIFO
        put in its place is an error, not a hang)."""
        sidecar = self._path.with_name(self._path.name + ".sha256")
        data = read_regular_file(self._path, max_bytes=MAX_MODEL_BYTES, follow_symlinks=True)
        digest = read_regular_file(sidecar, max_bytes=_SIDECAR_BYTES, follow_symlinks=True)
        return Fetched(data, parse_sidecar(digest, str(sidecar)), None)


def verify_artifact(fetched: Fetched) -> str:
    """The artifact's SHA-256 if it equals the promised one; else :class:`ArtifactError`."""
    actual = hashlib.sha256(fetched.data).hexdigest()
    if actual != fetched.expected_sha256:
        raise ArtifactError(
            f"artifact SHA-256 {actual} does not match the sidecar's {fetched.expected_sha256}"
        )
    return actual


def install_model(directory: Path, fetched: Fetched) -> ModelInfo:
    """Verify ``fetched`` and place it in ``directory`` (kept if already there)."""
    verify_artifact(fetched)
    name, sha = install_model_file(directory, fetched.data)
    return ModelInfo(version=fetched.version or f"sha256:{sha[:12]}", sha256=sha, file=name)


class ModelWatcher:
    """Polls a :class:`ModelFetcher` on a background thread and installs new artifacts.

    The main loop calls :meth:`take` to receive newly installed models (newest only). Thread
    safety: the thread only writes new ``model-*`` files; everything else is the caller's.
    """

    def __init__(self, fetcher: ModelFetcher, directory: Path, *, interval_s: float) -> None:
        self._fetcher = fetcher
        self._directory = directory
        self._interval_s = interval_s
        self._results: queue.Queue[ModelInfo] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._identity: str | None = None
        self.error: str | None = None

    def check(self) -> ModelInfo | None:
        """One poll: install and return a new artifact, or None when unchanged.

        Raises StoreError, OSError or ArtifactError; the identity is remembered only after a
        successful install, so a failed attempt is repeated at the next poll.
        """
        identity = self._fetcher.identity()
        if identity == self._identity:
            return None
        info = install_model(self._directory, self._fetcher.fetch())
        self._identity = identity
        log.info(
            "model artifact installed", extra={"model_version": info.version, "file": info.file}
        )
        return info

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait for it (bounded)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def take(self) -> ModelInfo | None:
        """The newest model installed since the last call, if any."""
        newest = None
        with contextlib.suppress(queue.Empty):
            while True:
                newest = self._results.get_nowait()
        return newest

    def _run(self) -> None:
        delay = self._interval_s
        while not self._stop.wait(delay):
            try:
                info = self.check()
            except (StoreError, OSError, ArtifactError) as exc:
                self.error = f"model: {exc}"
                log.warning("model check failed", extra={"error": str(exc)})
                delay = min(max(delay * 2, 1.0), max(self._interval_s, 60.0))
                continue
            self.error = None
            delay = self._interval_s
            if info is not None:
                self._results.put(info)
