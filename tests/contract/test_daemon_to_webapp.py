"""The contract end to end: the daemon's own code publishes, the webapp's own code reads.

The real daemon service runs on its replay source with a real model artifact; a worker's
:class:`~webapp.worker_state.WorkerState` reads what it published through the contract types
only. Every field one side writes is the value the other side reads.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from cache_daemon.config import DaemonConfig
from contract.metadata import GenerationMeta, schema_fingerprint
from contract.model_files import model_file_sha256
from contract.status import DaemonStatus, read_status
from shm import table_checksum
from tests.daemon._helpers import running
from tests.webapp._support import train_artifact
from webapp.config import Settings
from webapp.worker_state import WorkerState


def test_daemon_publication_reads_back_in_a_worker(tmp_path: Path) -> None:
    shm_dir = Path("/dev/shm") / f"contract-{time.time_ns()}"
    data = train_artifact(max_lag=48, horizon=12)
    digest = hashlib.sha256(data).hexdigest()
    model = tmp_path / "model.skops"
    model.write_bytes(data)
    model.with_name("model.skops.sha256").write_text(digest + "\n")
    env = {
        "SHM_DIR": str(shm_dir),
        "REPLAY_RATE": "400",
        "PUBLISH_INTERVAL_MS": "20",
        "MODEL_PATH": str(model),
        "MODEL_POLL_INTERVAL_S": "0.1",
    }
    config = DaemonConfig.from_env(env)
    worker = WorkerState(Settings.from_env(env))
    try:
        with running(config):
            deadline = time.monotonic() + 30
            while not (ready := worker.readiness()).ready and time.monotonic() < deadline:
                time.sleep(0.05)
            assert ready.ready, ready.reason
            view = worker.view()
            assert view is not None
            live = worker.daemon_status()
        # The daemon has stopped: the file no longer changes between two reads.
        status, raw_status = worker.daemon_status(), read_status(shm_dir)
    finally:
        shutil.rmtree(shm_dir, ignore_errors=True)

    meta, table = view.meta, view.snapshot.table
    assert meta == GenerationMeta.from_metadata(view.snapshot.metadata)
    assert meta.to_metadata() == dict(view.snapshot.metadata)  # nothing the type drops
    assert (meta.source, meta.state) == ("replay", "live")
    assert meta.rows == table.num_rows == view.summary().rows
    assert meta.window_checksum == table_checksum(table) == view.summary().checksum
    assert meta.schema_fingerprint == schema_fingerprint(table.schema)
    assert meta.offsets == {}
    assert meta.counters.events > 0  # streamed events (the replayed history is a bootstrap)

    assert meta.model_sha256 == digest == model_file_sha256(meta.model_file)
    loaded = worker.models.get(meta)
    assert (loaded.file, loaded.sha256) == (meta.model_file, digest)
    assert loaded.forecaster.version == meta.model_version or meta.model_version.startswith(
        "sha256:"
    )
    assert len(view.forecast(loaded).points) == 12

    assert live is not None and (live.state, live.source) == ("live", "replay")
    assert status is not None and raw_status is not None
    assert status == DaemonStatus.from_mapping(raw_status)
    assert status.source == "replay" and status.pid == live.pid
    assert status.generation is not None and status.generation >= view.snapshot.generation
    assert status.heartbeat_ns is not None and status.started_ns is not None
    assert DaemonStatus.from_bytes(status.to_json()) == status
