"""The daemon's claim on ``SHM_DIR``: it adopts only an empty (or new) directory or one a
publisher created, and refuses to share it with files it did not write.

A wrong ``SHM_DIR`` (``/``, ``/dev/shm`` itself, a regular file, an unrelated directory, a
directory holding planted ``gen-*`` files) stops the daemon with a :class:`ConfigError` naming
the variable before anything in it is changed.
"""

from __future__ import annotations

import re
from pathlib import Path

from cache_daemon.errors import ConfigError
from shm import Publisher, PublisherLockedError, check_adoptable

__all__ = ["is_daemon_file", "open_publisher"]

# What the daemon itself writes next to the protocol's files: the status file, model
# artifacts, and their temp files (cache_daemon._atomic, forecasting.install).
_DAEMON_FILE = re.compile(
    r"\A(?:daemon-status\.json|model-[0-9a-f]{64}\.skops"
    r"|\.(?:daemon-status\.json|model-[0-9a-f]{64}\.skops)\.[0-9]+\.part"
    r"|\.model-[A-Za-z0-9_]{1,16})\Z"
)
_SHOWN = 5


def is_daemon_file(name: str) -> bool:
    """True for a name the daemon writes into ``SHM_DIR`` besides the shm protocol's."""
    return _DAEMON_FILE.match(name) is not None


def open_publisher(directory: Path, keep: int = 2) -> Publisher:
    """The publisher of ``directory`` (keeping ``keep`` generations), after checking the
    daemon may use it.

    Raises :class:`ConfigError` (``SHM_DIR``) for a directory it must not adopt or that
    holds files it did not write, and lets :class:`~shm.PublisherLockedError` through (another
    daemon runs on it).
    """
    try:
        check_adoptable(directory)
        publisher = Publisher(directory, keep=keep)
    except PublisherLockedError:
        raise
    except OSError as exc:  # UnsafePathError and ForeignDirectoryError included
        raise ConfigError("SHM_DIR", str(exc)) from None
    strays = publisher.strays(also_ours=is_daemon_file)
    if strays:
        publisher.close()
        shown = ", ".join(strays[:_SHOWN])
        more = f" and {len(strays) - _SHOWN} more" if len(strays) > _SHOWN else ""
        raise ConfigError(
            "SHM_DIR",
            f"{directory} holds files this daemon did not write: {shown}{more}; remove them "
            "or give an empty directory",
        )
    return publisher
