"""The daemon's claim on ``SHM_DIR``: it adopts only an empty (or new) directory or one a
publisher created, and refuses to share it with files it did not write.

A wrong ``SHM_DIR`` (``/``, ``/dev/shm`` itself, a regular file, an unrelated directory, a
directory holding planted ``gen-*`` files) stops the daemon with a :class:`ConfigError` naming
the variable before anything in it is changed.
"""

from __future__ import annotations

from pathlib import Path

from cache_daemon.errors import ConfigError
from contract._atomic import temp_target
from contract.model_files import is_model_file
from contract.status import STATUS_FILE
from shm import Publisher, PublisherLockedError, check_adoptable

__all__ = ["is_daemon_file", "open_publisher"]

_SHOWN = 5


def is_daemon_file(name: str) -> bool:
    """True for a name the daemon writes into ``SHM_DIR`` besides the shm protocol's: the
    status file, model files, and the temp files they are written through."""
    target = temp_target(name) or name
    return target == STATUS_FILE or is_model_file(target)


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
