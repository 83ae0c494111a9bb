"""The cache daemon: turns a Kafka stream (or the bundled replay) into the latest window and
publishes it through :class:`shm.Publisher`. Run it with ``python -m cache_daemon``."""

from cache_daemon.config import DaemonConfig, S3Config
from cache_daemon.decode import REASONS, Decoder, Event
from cache_daemon.errors import (
    ArtifactError,
    ConfigError,
    DaemonError,
    DecodeError,
    SnapshotError,
    StoreError,
)
from cache_daemon.publication import ModelInfo
from cache_daemon.series_windows import SeriesWindows
from cache_daemon.window import Outcome, Window
from contract.metadata import Counters
from contract.status import STATUS_FILE, read_status

__all__ = [
    "REASONS",
    "STATUS_FILE",
    "ArtifactError",
    "ConfigError",
    "Counters",
    "DaemonConfig",
    "DaemonError",
    "DecodeError",
    "Decoder",
    "Event",
    "ModelInfo",
    "Outcome",
    "S3Config",
    "SeriesWindows",
    "SnapshotError",
    "StoreError",
    "Window",
    "read_status",
]
