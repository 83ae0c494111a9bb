"""The service's ``gunicorn.conf.py`` with the workers' directory watch unavailable, as where
inotify is missing: each worker's follower wakes every ``WORKER_FOLLOW_INTERVAL_MS`` (20 ms)
whatever happens, which is what it did everywhere before the watch. The baseline of
``bench.follower_idle``.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from webapp.follower import DirectoryRenames

globals().update(
    (name, value)
    for name, value in runpy.run_path(
        str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py")
    ).items()
    if not name.startswith("__")
)


def _no_watch(directory: Path) -> DirectoryRenames | None:
    return None


# Patched in the master before the workers fork, so every worker inherits it.
DirectoryRenames.watch = staticmethod(_no_watch)  # type: ignore[method-assign]
