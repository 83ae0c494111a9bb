"""The local stack's jars: fetched by Maven coordinates, verified against the lock, cached.

``resolve_jars`` makes ``<cache>/stack/lib/<set>/<file>`` hold exactly the jars pinned in
``infra/stack-jars.lock.json`` (see ``scripts._stack_jars_lock``): every cached file is checked
against its pinned SHA-256 on each resolution (about 90 MB, well under a second); a file that
is missing or differs is fetched again, and a file the lock does not list is removed (the
broker's classpath is a directory wildcard). No Java and no Maven are needed.

Downloads go through the ``maven-artifact`` library, whose default repository is Maven Central:
the project names coordinates, never a host. Each file is streamed into a unique part file,
hashed on the way, and renamed into place only when size and SHA-256 match. Transient errors
(connection, timeout, truncated body, HTTP 429 and 5xx) are retried with exponential backoff;
anything else, and a file that does not match its pin, fails with a ``StackError`` naming the
coordinates. Concurrent callers (several test sessions, a ``make run``) serialise on the file
lock ``<cache>/stack/.resolve.lock``; the second one finds the files in place.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from maven_artifact import Artifact, Downloader
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tqdm import tqdm

from scripts._stack_jars_lock import SETS, LockedJar, lock_key, read_lock
from scripts.errors import StackError

__all__ = ["Jars", "ensure_jars", "resolve_jars"]

log = logging.getLogger(__name__)

_WORKERS = 4
_ATTEMPTS = 5
_TIMEOUT_S = (10.0, 30.0)  # connect, between two reads
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Jars:
    """Resolved jars: the broker's classpath (a directory wildcard), the s3proxy jar, and a key
    that changes whenever any jar does (a digest of the lock's pins)."""

    kafka_classpath: str
    s3proxy_jar: Path
    key: str


def resolve_jars(*, lock: Path, cache_dir: Path, repository: str | None = None) -> Jars:
    """Make ``<cache_dir>/stack/lib`` match the lock file ``lock`` and return the jars.

    ``repository`` overrides the library's default repository (a mirror; the tests use a
    loopback server). Raises ``StackError`` when the lock is malformed or a jar cannot be
    fetched or does not match its pin.
    """
    jars = read_lock(lock)
    s3proxy = [jar for jar in jars if jar.set == "s3proxy"]
    if len(s3proxy) != 1:
        raise StackError(f"{lock}: set s3proxy must hold exactly one jar, not {len(s3proxy)}")
    lib = cache_dir / "stack" / "lib"
    ensure_jars(jars, lib, repository=repository)
    return Jars(
        kafka_classpath=str(lib / "kafka" / "*"),
        s3proxy_jar=lib / "s3proxy" / s3proxy[0].file,
        key=lock_key(jars),
    )


def ensure_jars(
    jars: list[LockedJar], lib: Path, *, repository: str | None = None
) -> list[LockedJar]:
    """Make ``lib/<set>/`` hold exactly ``jars``, each matching its SHA-256; return the ones it
    had to fetch (empty when the cache was complete and intact)."""
    lib.mkdir(parents=True, exist_ok=True)
    with _locked(lib.parent / ".resolve.lock"):
        _remove_unlisted(jars, lib)
        todo = [jar for jar in jars if not _intact(jar, lib / jar.set / jar.file)]
        if todo:
            _fetch_all(todo, lib, repository)
    return todo


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _remove_unlisted(jars: list[LockedJar], lib: Path) -> None:
    # Left by an older lock, by Maven (the former resolver), or by an interrupted download.
    (lib / ".resolved").unlink(missing_ok=True)
    for name in SETS:
        wanted = {jar.file for jar in jars if jar.set == name}
        folder = lib / name
        folder.mkdir(exist_ok=True)
        for path in folder.iterdir():
            if path.name not in wanted and path.is_file():
                path.unlink()


def _intact(jar: LockedJar, path: Path) -> bool:
    try:
        if path.stat().st_size == jar.size:
            with open(path, "rb") as handle:
                if hashlib.file_digest(handle, "sha256").hexdigest() == jar.sha256:
                    return True
    except FileNotFoundError:
        return False
    log.warning("%s does not match its pinned SHA-256; fetching it again", path)
    path.unlink()
    return False


class _Bar:
    """A byte counter shared by the download threads (tqdm on a terminal, silent elsewhere)."""

    def __init__(self, total: int) -> None:
        self._lock = threading.Lock()
        self._bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="stack jars",
            file=sys.stderr,
            disable=None,
        )

    def update(self, count: int) -> None:
        with self._lock:
            self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


def _fetch_all(todo: list[LockedJar], lib: Path, repository: str | None) -> None:
    total = sum(jar.size for jar in todo)
    log.info("fetching %d jar(s), %.1f MB, into %s", len(todo), total / 1e6, lib)
    downloader = Downloader() if repository is None else Downloader(base=repository)
    bar = _Bar(total)
    try:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            futures = [
                pool.submit(_fetch, downloader, jar, lib / jar.set / jar.file, bar) for jar in todo
            ]
            # Every download finishes (or fails) before the first error is raised.
            errors = [future.exception() for future in futures]
    finally:
        bar.close()
    for error in errors:
        if error is not None:
            raise error


def _fetch(downloader: Downloader, jar: LockedJar, dest: Path, bar: _Bar) -> None:
    artifact = Artifact(jar.group, jar.artifact, jar.version, jar.classifier, jar.extension)
    url = str(downloader.resolver.uri_for_artifact(artifact))
    retrying = Retrying(
        retry=retry_if_exception(_transient),
        stop=stop_after_attempt(_ATTEMPTS),
        wait=wait_exponential_jitter(multiplier=0.5, max=10.0, jitter=0.5),
        before_sleep=lambda state: _log_retry(jar, state),
        reraise=True,
    )
    try:
        for attempt in retrying:
            with attempt:
                _fetch_once(downloader, url, jar, dest, bar)
    except requests.RequestException as exc:
        raise StackError(f"cannot fetch {jar.coordinates} from {url}: {exc}") from exc


def _fetch_once(downloader: Downloader, url: str, jar: LockedJar, dest: Path, bar: _Bar) -> None:
    part = dest.with_name(f"{dest.name}.part-{secrets.token_hex(4)}")
    digest = hashlib.sha256()
    counted = 0
    try:
        response = _get(downloader, url)
        with response, open(part, "wb") as out:
            for chunk in response.iter_content(chunk_size=_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                counted += len(chunk)
                bar.update(len(chunk))
        if counted != jar.size or digest.hexdigest() != jar.sha256:
            raise StackError(
                f"{jar.coordinates} from {url} is {counted} bytes with SHA-256 "
                f"{digest.hexdigest()}; infra/stack-jars.lock.json pins {jar.size} bytes with "
                f"SHA-256 {jar.sha256}. Not used. If the upgrade is intended, regenerate the "
                "lock (`python -m scripts.stack_lock`)."
            )
        os.replace(part, dest)
    except BaseException:
        bar.update(-counted)
        part.unlink(missing_ok=True)
        raise


def _get(downloader: Downloader, url: str) -> requests.Response:
    """Start streaming ``url`` through the library; raises ``requests.HTTPError`` on 4xx/5xx."""
    try:
        response: requests.Response = downloader.requestor.request(
            url, None, stream=True, timeout=_TIMEOUT_S
        )
    except requests.HTTPError as exc:
        # The library raises with the streamed response still open: free its socket now.
        if exc.response is not None:
            exc.response.close()
        raise
    return response


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    return isinstance(
        exc, requests.ConnectionError | requests.Timeout | requests.exceptions.ChunkedEncodingError
    )


def _log_retry(jar: LockedJar, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "fetching %s failed (%s); attempt %d of %d in %.1f s",
        jar.coordinates,
        error,
        state.attempt_number + 1,
        _ATTEMPTS,
        wait,
    )
