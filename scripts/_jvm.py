"""Java and Maven for the local stack: finding them, resolving the jars, JVM flags.

The jars come from Maven Central through ``infra/pom.xml`` into ``<cache>/stack/lib`` with the
Maven repository at ``<cache>/m2``, both inside the project's git-ignored cache folder. The
resolution is stamped with the SHA-256 of the pom, so it runs once per machine (and again only
when the pom changes); concurrent callers serialise on a file lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.errors import MissingToolError, StackError

__all__ = ["JAVA_MIN_MAJOR", "Jars", "find_java", "jvm_flags", "resolve_jars"]

log = logging.getLogger(__name__)

JAVA_MIN_MAJOR = 17

_INSTALL_JAVA = (
    "install a Java 17+ runtime (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`, "
    "macOS: `brew install openjdk@17`) or set JAVA_HOME to one"
)
_INSTALL_MAVEN = (
    "install Apache Maven 3.6.3+ (Debian/Ubuntu: `apt-get install maven`, macOS: "
    "`brew install maven`); it downloads the Kafka and s3proxy jars once"
)


@dataclass(frozen=True)
class Jars:
    """Resolved jars: the broker's classpath (a directory wildcard), the s3proxy jar, and a key
    that changes whenever they do (the pom's digest)."""

    kafka_classpath: str
    s3proxy_jar: Path
    key: str


def find_java(java_home: str | None) -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` first, else ``PATH``).

    Raises:
        MissingToolError: no java, or one older than Java 17; the message says what to install.
    """
    if java_home:
        java = str(Path(java_home) / "bin" / "java")
        if not Path(java).is_file():
            raise MissingToolError(f"JAVA_HOME={java_home} has no bin/java: {_INSTALL_JAVA}")
    else:
        found = shutil.which("java")
        if found is None:
            raise MissingToolError(f"`java` is not on PATH: {_INSTALL_JAVA}")
        java = found
    major = _java_major(java)
    if major < JAVA_MIN_MAJOR:
        raise MissingToolError(
            f"{java} is Java {major}, Java {JAVA_MIN_MAJOR}+ is needed: {_INSTALL_JAVA}"
        )
    return java


def _java_major(java: str) -> int:
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [java, "-version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr)
    if done.returncode != 0 or match is None:
        raise MissingToolError(
            f"`{java} -version` failed ({done.stderr.strip()!r}): {_INSTALL_JAVA}"
        )
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


def resolve_jars(*, pom: Path, cache_dir: Path) -> Jars:
    """Make sure the stack's jars are in ``<cache_dir>/stack/lib`` and return them.

    Runs Maven only when the stamp is missing or stale (first run on a machine: downloads about
    190 MB; later runs: nothing). Raises ``MissingToolError`` when Maven is needed but missing and
    ``StackError`` with the end of Maven's output when the resolution fails.
    """
    lib = cache_dir / "stack" / "lib"
    stamp = lib / ".resolved"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    lib.parent.mkdir(parents=True, exist_ok=True)
    with open(lib.parent / ".resolve.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text().strip() == digest):
            _run_maven(pom=pom, lib=lib, repo=cache_dir / "m2")
            stamp.write_text(digest + "\n")
    jars = Jars(
        kafka_classpath=str(lib / "kafka" / "*"),
        s3proxy_jar=lib / "s3proxy" / "s3proxy.jar",
        key=digest,
    )
    if not jars.s3proxy_jar.is_file() or not any((lib / "kafka").glob("kafka_2.13-*.jar")):
        stamp.unlink(missing_ok=True)
        raise StackError(f"{lib} lacks the Kafka or s3proxy jars; run the command again")
    return jars


def _run_maven(*, pom: Path, lib: Path, repo: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(f"`mvn` is not on PATH: {_INSTALL_MAVEN}")
    shutil.rmtree(lib, ignore_errors=True)
    log.info("resolving Kafka and s3proxy jars with Maven into %s (first run downloads)", lib)
    cmd = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        f"-Dmaven.repo.local={repo}",
        f"-Dstack.lib={lib}",
        "generate-resources",
    ]
    # Maven finds Java through the inherited JAVA_HOME or PATH, like the stack itself.
    done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        cmd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise StackError(f"Maven could not resolve {pom} (exit {done.returncode}):\n{tail}")


def jvm_flags(*, heap_mb: int) -> list[str]:
    """JVM options for a short-lived local server on a small machine.

    C1 only (``TieredStopAtLevel=1``) because start-up time matters more than peak throughput
    here and C2 compilations compete with the tests for the two cores; the serial collector
    because it starts no GC worker threads; ``-Xshare:auto`` maps the JDK's class-data archive
    and an application archive when one is given (``scripts._cds``) and runs without them
    when they cannot be mapped.
    """
    return [
        f"-Xmx{heap_mb}m",
        "-Xms64m",
        "-Xss512k",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Xshare:auto",
        "-XX:-UsePerfData",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
    ]
