"""Restart-with-backoff supervision of the cache daemon under ``make run``, as a kubelet
restarts the sidecar in the pod.

While the daemon is down, the Gunicorn workers keep serving the last published generation;
``/readyz`` turns stale once the data is older than ``MAX_DATA_AGE_MS``. Each exit is logged
with its status and the daemon's last log line, and the status file in the shm directory is
marked ``crashed`` with that reason, so ``/readyz`` explains why the data stopped moving.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO

from contract.status import STATUS_FILE, DaemonStatus, write_status

__all__ = ["REFUSED", "Backoff", "DaemonSupervisor"]

log = logging.getLogger("scripts.run_local")

# The daemon's exit status for a refusal to start (configuration, shm directory, lock).
REFUSED = 2
# A JSON log line at error level or above (the level's case differs between formatters).
_ERROR_LINE = re.compile(r'"level":\s*"(?:error|critical)"', re.IGNORECASE)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Backoff:
    """Delays before restart ``n``: ``first_s`` doubling up to ``max_s``; a run that lasted
    ``reset_after_s`` or more starts the sequence over."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0, reset_after_s: float = 60.0):
        self.first_s = first_s
        self.max_s = max_s
        self.reset_after_s = reset_after_s
        self.failures = 0

    def next_delay(self, ran_for_s: float) -> float:
        if ran_for_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.max_s, self.first_s * float(2**self.failures))
        self.failures += 1
        return delay


class DaemonSupervisor:
    """Runs ``spawn()``'s process, relays its stderr, and restarts it with :class:`Backoff`.

    Contract: :meth:`poll` is called from the main loop; it never blocks for longer than a
    ``Popen.poll``. :meth:`stop_restarting` before terminating the process for good. A first
    start refused with exit status 2 is not retried: :attr:`refused` then holds the reason.
    A later exit 2 is retried without marking the status file, which may be another
    daemon's.
    """

    def __init__(self, spawn: Callable[[], subprocess.Popen[bytes]], shm_dir: Path) -> None:
        self._spawn = spawn
        self._shm_dir = shm_dir
        self._backoff = Backoff()
        self._tail: collections.deque[str] = collections.deque(maxlen=20)
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] = self._start()
        self._started = time.monotonic()
        self._restart_at: float | None = None
        self._restarting = True
        self.refused: str | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        proc = self._spawn()
        if proc.stderr is not None:
            threading.Thread(
                target=self._relay, args=(proc.stderr,), name="daemon-stderr", daemon=True
            ).start()
        return proc

    def _relay(self, stream: IO[bytes]) -> None:
        """Copy the daemon's stderr to ours, keeping its last lines. Reads to the end whatever
        happens to our stderr (a closed terminal, a broken pipe): a relay that stopped reading
        would block the daemon on its next log line once the pipe is full."""
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if line.strip():
                    self._tail.append(line)
                try:
                    sys.stderr.write(line + "\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
        finally:
            stream.close()

    def stop_restarting(self) -> None:
        self._restarting = False

    def poll(self) -> None:
        """Notice an exit (log it, mark the status file) and restart when the delay is over."""
        now = time.monotonic()
        if self._restart_at is not None:
            if now >= self._restart_at and self._restarting:
                self._restart_at = None
                self.restarts += 1
                self.proc = self._start()
                self._started = now
                log.info(
                    "cache_daemon restarted (pid %d, restart %d)", self.proc.pid, self.restarts
                )
            return
        code = self.proc.poll()
        if code is None or not self._restarting:
            return
        time.sleep(0.05)  # let the relay thread take the daemon's last lines
        how = f"killed by {_signal_name(-code)}" if code < 0 else f"exited with {code}"
        reason = f"cache_daemon {how} (last log: {self._last_words()})"
        if code == REFUSED and self.restarts == 0:
            # Refused to start (configuration, a directory it must not adopt, another daemon
            # holding the lock): restarting cannot help, and the status file is not its own.
            log.error("%s; not restarting", reason)
            self.refused = reason
            self._restarting = False
            return
        delay = self._backoff.next_delay(now - self._started)
        log.error("%s; restarting in %.1f s", reason, delay)
        if code != REFUSED:
            self._mark_crashed(reason)
        self._restart_at = now + delay

    def _last_words(self) -> str:
        """The daemon's last error line if it logged one, else its last line (JSON lines are
        reduced to their message and error)."""
        lines = list(self._tail)
        for line in reversed(lines):
            if _ERROR_LINE.search(line) or "Error" in line:
                return _brief(line)
        return _brief(lines[-1]) if lines else "none"

    def _mark_crashed(self, reason: str) -> None:
        """Keep the dead daemon's last status (its heartbeat ages) with state ``crashed``."""
        try:
            last = DaemonStatus.from_bytes((self._shm_dir / STATUS_FILE).read_bytes())
        except OSError:
            last = None
        crashed = replace((last or DaemonStatus()).with_state("crashed"), last_error=reason)
        try:
            write_status(self._shm_dir, crashed)
        except OSError as exc:
            log.warning("cannot mark the daemon status crashed: %s", exc)


def _brief(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:300]
    if not isinstance(entry, dict):
        return line[:300]
    parts = [str(entry[k]) for k in ("msg", "message", "error") if entry.get(k)]
    return ": ".join(parts)[:300] or line[:300]
