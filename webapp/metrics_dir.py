"""The Prometheus multiprocess directory of one Gunicorn master.

The master chooses (and wipes) it before anything imports ``prometheus_client``, which reads
``PROMETHEUS_MULTIPROC_DIR`` at import; each worker then writes its samples there and
``/metrics`` merges them (:mod:`webapp.metrics`). This module imports no Prometheus code.
"""

from __future__ import annotations

import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MetricsDir", "claim_metrics_dir"]

# Set in the master's environment: a configuration reload (SIGHUP) re-executes
# gunicorn.conf.py in the same master, and must not wipe the files of running workers.
_OWNER = "WEBAPP_METRICS_OWNER"
_CREATED = "WEBAPP_METRICS_CREATED"
_DIR = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True, slots=True)
class MetricsDir:
    """The directory, and whether this master created it (then it removes it on exit)."""

    path: Path
    created: bool


def claim_metrics_dir(environ: MutableMapping[str, str], pid: int) -> MetricsDir:
    """Choose the directory of master ``pid`` and record it in ``environ``, once per master.

    A given ``PROMETHEUS_MULTIPROC_DIR`` is created if needed and emptied of samples;
    otherwise a fresh directory is made in ``/dev/shm`` (the system temporary directory where
    there is none).
    """
    if environ.get(_OWNER) == str(pid):
        return MetricsDir(Path(environ[_DIR]), environ.get(_CREATED) == "1")
    given = environ.get(_DIR, "").strip()
    if given:
        path = Path(given)
        path.mkdir(mode=0o750, parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
    else:
        base = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
        path = Path(tempfile.mkdtemp(prefix="webapp-metrics-", dir=base))
    environ[_DIR] = str(path)
    environ[_OWNER] = str(pid)
    environ[_CREATED] = "0" if given else "1"
    return MetricsDir(path, not given)
