"""scripts._stack_jars and its lock: jars fetched by coordinates, verified against their pinned
SHA-256, re-fetched when the cache is damaged, retried on transient errors, refused when they
differ from the pin; the lock file's validation; the lock command's parsing of Maven's listing.

One test downloads the smallest pinned jar (4 KB) from the library's default repository; the
others talk to a real HTTP server on 127.0.0.1 that plays a repository with scripted failures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scripts._stack_jars import ensure_jars, resolve_jars
from scripts._stack_jars_lock import LockedJar, lock_key, read_lock, write_lock
from scripts.errors import StackError
from scripts.stack import ROOT
from scripts.stack_lock import parse_listing

LOCK = ROOT / "infra" / "stack-jars.lock.json"
PAYLOAD = b"PK\x03\x04 not really a jar, but bytes with a known digest " * 64


def jar_for(payload: bytes, **changes: object) -> LockedJar:
    jar = LockedJar(
        set="kafka",
        group="org.example.stack",
        artifact="demo",
        version="1.0",
        classifier=None,
        extension="jar",
        file="demo-1.0.jar",
        size=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    return replace(jar, **changes)


DEMO = "/org/example/stack/demo/1.0/demo-1.0.jar"
Reply = tuple[int, bytes, int | None]


@dataclass
class Repository:
    """A loopback HTTP server that answers each GET of a path with the next reply scripted for
    that path (downloads run in parallel, so replies are per path), else 404."""

    base: str
    replies: dict[str, list[Reply]] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)

    def script(self, path: str, *replies: Reply) -> None:
        """Each reply: (status, body, Content-Length to announce; None: the body's length)."""
        self.replies[path] = list(replies)


@pytest.fixture
def repository() -> Iterator[Repository]:
    repo = Repository(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.removeprefix("/maven2")
            repo.paths.append(path)
            queue = repo.replies.get(path)
            status, body, length = queue.pop(0) if queue else (404, b"", None)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)  # a shorter body than announced: the connection just closes

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    repo.base = f"http://127.0.0.1:{server.server_address[1]}/maven2"
    try:
        yield repo
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def leftovers(lib: Path) -> list[str]:
    return sorted(p.name for p in lib.rglob("*") if p.is_file())


def test_a_corrupted_cached_jar_is_detected_and_fetched_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    smallest = min(read_lock(LOCK), key=lambda jar: jar.size)
    assert smallest.size < 50_000
    lib = tmp_path / "lib"
    path = lib / smallest.set / smallest.file

    assert ensure_jars([smallest], lib) == [smallest]  # the real repository, by coordinates
    original = path.read_bytes()
    assert hashlib.sha256(original).hexdigest() == smallest.sha256
    assert ensure_jars([smallest], lib) == []  # intact: nothing fetched

    # Same size, one byte flipped, modification time kept: only the hash can tell.
    stat = path.stat()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0xFF
    path.write_bytes(bytes(damaged))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with caplog.at_level(logging.WARNING, logger="scripts._stack_jars"):
        assert ensure_jars([smallest], lib) == [smallest]
    assert f"{path} does not match its pinned SHA-256" in caplog.text
    assert path.read_bytes() == original
    assert leftovers(lib) == [smallest.file]


def test_transient_errors_are_retried_with_backoff(
    tmp_path: Path, repository: Repository, caplog: pytest.LogCaptureFixture
) -> None:
    jar = jar_for(PAYLOAD)
    repository.script(
        DEMO,
        (503, b"busy", None),
        (200, PAYLOAD[:100], len(PAYLOAD)),  # the connection drops mid-body
        (200, PAYLOAD, None),
    )
    with caplog.at_level(logging.WARNING, logger="scripts._stack_jars"):
        fetched = ensure_jars([jar], tmp_path / "lib", repository=repository.base)
    assert fetched == [jar]
    assert (tmp_path / "lib" / "kafka" / jar.file).read_bytes() == PAYLOAD
    assert repository.paths == [DEMO] * 3
    assert caplog.text.count("fetching org.example.stack:demo:jar:1.0 failed") == 2
    assert leftovers(tmp_path / "lib") == [jar.file]


def test_a_file_that_differs_from_its_pin_is_refused_at_once(
    tmp_path: Path, repository: Repository
) -> None:
    jar = jar_for(PAYLOAD, classifier="all", file="demo.jar")
    all_jar = "/org/example/stack/demo/1.0/demo-1.0-all.jar"
    repository.script(all_jar, (200, PAYLOAD[::-1], None), (200, PAYLOAD, None))
    with pytest.raises(StackError) as caught:
        ensure_jars([jar], tmp_path / "lib", repository=repository.base)
    message = str(caught.value)
    assert "org.example.stack:demo:jar:all:1.0" in message
    assert f"pins {len(PAYLOAD)} bytes with SHA-256 {jar.sha256}" in message
    assert repository.paths == [all_jar]
    assert leftovers(tmp_path / "lib") == []


def test_a_missing_artifact_is_a_clear_error_without_retries(
    tmp_path: Path, repository: Repository
) -> None:
    with pytest.raises(StackError, match=r"cannot fetch org\.example\.stack:demo:jar:1\.0 .*404"):
        ensure_jars([jar_for(PAYLOAD)], tmp_path / "lib", repository=repository.base)
    assert len(repository.paths) == 1
    assert leftovers(tmp_path / "lib") == []


def test_unlisted_files_are_removed_and_an_intact_cache_fetches_nothing(
    tmp_path: Path, repository: Repository
) -> None:
    lib = tmp_path / "lib"
    (lib / "kafka").mkdir(parents=True)
    (lib / "kafka" / "kafka_2.13-0.9.jar").write_bytes(b"an older version")
    (lib / "kafka" / "demo-1.0.jar.part-1234abcd").write_bytes(b"an interrupted download")
    (lib / ".resolved").write_text("stamp of the former resolver\n")
    repository.script(DEMO, (200, PAYLOAD, None))
    jar = jar_for(PAYLOAD)
    assert ensure_jars([jar], lib, repository=repository.base) == [jar]
    assert ensure_jars([jar], lib, repository=repository.base) == []
    assert len(repository.paths) == 1
    assert leftovers(lib) == [jar.file]


def test_resolve_jars_returns_the_classpath_the_archive_key_and_the_s3proxy_jar(
    tmp_path: Path, repository: Repository
) -> None:
    kafka = jar_for(PAYLOAD)
    other = PAYLOAD.upper()
    s3proxy = jar_for(other, set="s3proxy", artifact="proxy", file="s3proxy.jar")
    lock = tmp_path / "lock.json"
    write_lock(lock, [s3proxy, kafka])
    repository.script(DEMO, (200, PAYLOAD, None))
    repository.script("/org/example/stack/proxy/1.0/proxy-1.0.jar", (200, other, None))
    jars = resolve_jars(lock=lock, cache_dir=tmp_path / "cache", repository=repository.base)
    lib = tmp_path / "cache" / "stack" / "lib"
    assert jars.kafka_classpath == f"{lib}/kafka/*"
    assert jars.s3proxy_jar.read_bytes() == other
    assert jars.key == lock_key([kafka, s3proxy])
    assert jars.key != lock_key([kafka, replace(s3proxy, sha256="0" * 64)])


def test_the_committed_lock_pins_kafka_its_classpath_and_s3proxy() -> None:
    jars = read_lock(LOCK)
    names = {(jar.group, jar.artifact) for jar in jars}
    assert {
        ("org.apache.kafka", "kafka_2.13"),
        ("org.apache.kafka", "kafka-clients"),
        ("org.scala-lang", "scala-library"),
        ("org.apache.logging.log4j", "log4j-slf4j-impl"),
    } <= names
    (s3proxy,) = [jar for jar in jars if jar.set == "s3proxy"]
    assert (s3proxy.artifact, s3proxy.classifier, s3proxy.file) == (
        "s3proxy",
        "jar-with-dependencies",
        "s3proxy.jar",
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sha256": "ABC"}, r"artifacts\[0\]\.sha256"),
        ({"file": "../../etc/evil.jar"}, r"artifacts\[0\]\.file"),
        ({"file": "kafka.txt"}, r"artifacts\[0\]\.file"),
        ({"set": "zookeeper"}, r"artifacts\[0\]\.set"),
        ({"size": 0}, r"artifacts\[0\]\.size"),
        ({"size": True}, r"artifacts\[0\]\.size"),
        ({"classifier": ""}, r"artifacts\[0\]\.classifier"),
        ({"version": None}, r"artifacts\[0\]\.version"),
    ],
)
def test_a_malformed_lock_entry_is_named(
    tmp_path: Path, change: dict[str, object], named: str
) -> None:
    entries = json.loads(LOCK.read_text())["artifacts"]
    entries[0].update(change)
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps({"artifacts": entries}))
    with pytest.raises(StackError, match=named):
        read_lock(lock)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
entry_fields = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.text(max_size=70)
        for name in ("set", "group", "artifact", "version", "classifier", "extension", "file")
    }
    | {"size": json_values, "sha256": json_values | st.just("a" * 64)},
)


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=json_values | st.fixed_dictionaries({"artifacts": st.lists(entry_fields)}))
def test_any_lock_document_parses_or_is_refused_with_a_stack_error(
    tmp_path: Path, document: object
) -> None:
    lock = tmp_path / "lock.json"
    lock.write_text(json.dumps(document))
    try:
        jars = read_lock(lock)
    except StackError as exc:
        assert str(lock) in str(exc)
    else:
        assert {jar.set for jar in jars} == {"kafka", "s3proxy"}


def test_a_lock_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    lock.write_text("artifacts = []")
    with pytest.raises(StackError, match=f"cannot read the jar lock file {lock}"):
        read_lock(lock)
    with pytest.raises(StackError, match="cannot read the jar lock file"):
        read_lock(tmp_path / "absent.json")


def test_the_lock_command_reads_maven_dependency_listing() -> None:
    listing = """
The following files have been resolved:
   org.apache.kafka:kafka_2.13:jar:4.4.0:compile:/m2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.jar
   org.pcollections:pcollections:jar:4.0.2:runtime:/m2/p/pcollections-4.0.2.jar -- module x
   org.gaul:s3proxy:jar:jar-with-dependencies:2.7.0:compile:/m2/g/s3proxy-2.7.0-jar-with-dependencies.jar
   org.example:only-for-tests:jar:1.0:test:/m2/e/only-for-tests-1.0.jar
"""
    found = [
        (entry.set, entry.coordinates, entry.file, str(path))
        for entry, path in parse_listing(listing)
    ]
    assert found == [
        (
            "kafka",
            "org.apache.kafka:kafka_2.13:jar:4.4.0",
            "kafka_2.13-4.4.0.jar",
            "/m2/org/apache/kafka/kafka_2.13/4.4.0/kafka_2.13-4.4.0.jar",
        ),
        (
            "kafka",
            "org.pcollections:pcollections:jar:4.0.2",
            "pcollections-4.0.2.jar",
            "/m2/p/pcollections-4.0.2.jar",
        ),
        (
            "s3proxy",
            "org.gaul:s3proxy:jar:jar-with-dependencies:2.7.0",
            "s3proxy.jar",
            "/m2/g/s3proxy-2.7.0-jar-with-dependencies.jar",
        ),
    ]
