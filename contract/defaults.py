"""Defaults both processes must agree on (and the tools that stand in for either)."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "MAX_DATA_AGE_MS",
    "MIN_MAX_DATA_AGE_MS",
    "REPO_ROOT",
    "SAMPLE_PATH",
    "SERIES_COLUMN",
    "SHM_DIR",
    "TOPIC",
]

# The shared-memory mount both containers see; the directory itself is 0750 (see shm).
SHM_DIR = Path("/dev/shm/shm-forecast")  # noqa: S108
REPO_ROOT = Path(__file__).resolve().parent.parent
# The bundled half-hourly electricity demand series: replayed by default, loaded by tools.
SAMPLE_PATH = REPO_ROOT / "data" / "electricity_demand_halfhourly.parquet"
SERIES_COLUMN = "demand_mw"
TOPIC = "demand"
# Data older than this is stale: the web workers stop being ready and the daemon's probe
# fails. The daemon refreshes its heartbeat every 0.5 s, so a bound below 100 ms could only
# flap.
MAX_DATA_AGE_MS = 10_000
MIN_MAX_DATA_AGE_MS = 100
