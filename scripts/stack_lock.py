"""Regenerate ``infra/stack-jars.lock.json`` from ``infra/pom.xml`` (for upgrades).

Usage (from the project root, Maven 3.6.3+ on ``PATH``)::

    .venv/bin/python -m scripts.stack_lock [--pom infra/pom.xml] [--lock infra/stack-jars.lock.json]

Maven resolves the pom's dependencies with their whole runtime closure
(``mvn dependency:list``) into its repository under the stack's cache folder; this command then
pins each resolved file by coordinates, size and SHA-256: ``org.gaul:s3proxy`` in set
``s3proxy`` as ``s3proxy.jar``, everything else in set ``kafka`` under Maven's file name. Maven
runs on the same JDK as the stack (``scripts._jvm.find_java``), so no system Java is needed.
Only this command needs Maven; the stack itself reads the lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts._jvm import find_java
from scripts._stack_config import ROOT, StackConfig
from scripts._stack_jars_lock import LockedJar, read_lock, write_lock
from scripts.errors import MissingToolError, StackError

__all__ = ["main", "parse_listing"]

log = logging.getLogger(__name__)

_LIST_GOAL = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:list"
# "group:artifact:type[:classifier]:version:scope:/abs/path[ -- module ...]"
_LINE = re.compile(
    r"^\s*(?P<group>[^:\s]+):(?P<artifact>[^:\s]+):(?P<extension>[^:\s]+)"
    r"(?::(?P<classifier>[^:\s]+))?:(?P<version>[^:\s]+):(?:compile|runtime)"
    r":(?P<path>/.+?)(?: -- .*)?$"
)
_S3PROXY = ("org.gaul", "s3proxy")


def parse_listing(text: str) -> list[tuple[LockedJar, Path]]:
    """The resolved artifacts of a ``dependency:list`` output file (absolute file names), each
    as a lock entry without its size and hash yet (0 and "") and the file Maven resolved."""
    found = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        path = Path(match["path"])
        is_s3proxy = (match["group"], match["artifact"]) == _S3PROXY
        entry = LockedJar(
            set="s3proxy" if is_s3proxy else "kafka",
            group=match["group"],
            artifact=match["artifact"],
            version=match["version"],
            classifier=match["classifier"],
            extension=match["extension"],
            file="s3proxy.jar" if is_s3proxy else path.name,
            size=0,
            sha256="",
        )
        found.append((entry, path))
    return found


def _pin(entry: LockedJar, path: Path) -> LockedJar:
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return dataclasses.replace(entry, size=path.stat().st_size, sha256=digest)


def _resolve(pom: Path, repo: Path, java: str) -> list[LockedJar]:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "`mvn` is not on PATH: regenerating the lock needs Apache Maven 3.6.3+ "
            "(Debian/Ubuntu: `apt-get install maven`, macOS: `brew install maven`)"
        )
    java_home = Path(os.path.realpath(java)).parents[1]
    with tempfile.TemporaryDirectory(prefix="stack-lock-") as tmp:
        listing = Path(tmp) / "dependencies.txt"
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            str(pom),
            f"-Dmaven.repo.local={repo}",
            _LIST_GOAL,
            "-DincludeScope=runtime",
            f"-DoutputFile={listing}",
            "-DoutputAbsoluteArtifactFilename=true",
        ]
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            cmd,
            capture_output=True,
            text=True,
            env={**os.environ, "JAVA_HOME": str(java_home)},
            check=False,
        )
        if done.returncode != 0 or not listing.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
            raise StackError(f"Maven could not resolve {pom} (exit {done.returncode}):\n{tail}")
        found = parse_listing(listing.read_text())
    if not found:
        raise StackError(f"Maven listed no artifact for {pom}")
    return [_pin(entry, path) for entry, path in found]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the lock file; returns the exit code (2 with a message on an error)."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.stack_lock", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--pom", type=Path, default=ROOT / "infra" / "pom.xml")
    parser.add_argument("--lock", type=Path, default=ROOT / "infra" / "stack-jars.lock.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="stack_lock: %(message)s", stream=sys.stderr)
    try:
        config = StackConfig.from_env(os.environ)
        java = find_java(config.java_home)
        jars = _resolve(args.pom, config.cache_dir / "m2", java.path)
        write_lock(args.lock, jars)
        read_lock(args.lock)  # the same checks the stack applies
    except StackError as exc:
        log.error("%s", exc)
        return 2
    total = sum(jar.size for jar in jars) / 1e6
    log.info("pinned %d jars (%.1f MB) in %s", len(jars), total, args.lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
