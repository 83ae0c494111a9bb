"""``python -m cache_daemon``: run the sidecar until SIGTERM/SIGINT.

The process first takes the nice value ``DAEMON_NICE`` (:mod:`cache_daemon.priority`).

Exit status: 0 after a clean stop (the first SIGTERM/SIGINT finishes the current publication,
publishes what was read, and exits); 2 for a configuration error (a message naming the
variable, ``SHM_DIR`` included when the directory may not be adopted) or a shm directory another
daemon holds. A second SIGINT (Ctrl-C again) kills the process at once; a repeated SIGTERM
does not: orchestrators send SIGTERM once and SIGKILL when their grace period ends, and a
SIGTERM delivered twice (seen under tini in a container) must not cut short the publication
of what was read.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from cache_daemon.config import DaemonConfig
from cache_daemon.errors import ConfigError, SnapshotError
from cache_daemon.priority import set_nice
from cache_daemon.service import run_service
from contract.logs import configure
from shm import PublisherLockedError, UnsafePathError

log = logging.getLogger("cache_daemon")
# Libraries that log every reconnect at INFO: WARNING and above only.
_CHATTY = ("kafka",)


def _install_signal_handlers(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        del frame
        stop.set()
        if signum == signal.SIGINT:
            # Ctrl-C again gets the default action: the process ends at once.
            signal.signal(signum, signal.SIG_DFL)
        else:
            # Ignored, not left to this handler: the interpreter resets a Python handler to
            # the default action while it finalizes, and a repeat then would kill it (143).
            signal.signal(signum, signal.SIG_IGN)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main() -> int:
    """Entry point; returns the exit status."""
    try:
        config = DaemonConfig.from_env(os.environ)
    except ConfigError as exc:
        configure("INFO", quiet=_CHATTY)
        log.critical("invalid configuration", extra={"error": str(exc)})
        return 2
    configure(config.log_level, quiet=_CHATTY)
    # Before any thread starts: threads inherit the nice value of the thread that starts them.
    nice, kept_because = set_nice(config.nice)
    stop = threading.Event()
    _install_signal_handlers(stop)
    log.info(
        "starting",
        extra={"source": config.source, "shm_dir": str(config.shm_dir), "nice": nice},
    )
    if kept_because is not None:
        log.info("DAEMON_NICE not applied", extra={"reason": kept_because})
    try:
        run_service(config, stop)
    except (ConfigError, PublisherLockedError, UnsafePathError, SnapshotError) as exc:
        log.critical("cannot start", extra={"error": str(exc)})
        return 2
    log.info("exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
