"""``bench._window.LiveWindow``: the benchmarks' stand-in for the daemon stays consistent when
a caller publishes while its heartbeat thread rewrites the status file."""

from __future__ import annotations

import threading
from pathlib import Path

from bench._series import END_NS, STEP_NS, series_table, train_model
from bench._window import LiveWindow
from contract.status import read_status


def test_publishing_while_the_heartbeat_writes_loses_no_status_and_raises_nothing(
    tmp_path: Path,
) -> None:
    artifact = train_model(tmp_path).read_bytes()
    tables = [series_table(64, end_ns=END_NS + i * STEP_NS) for i in range(1, 301)]
    failures: list[BaseException] = []

    def feed(window: LiveWindow) -> None:
        try:
            for table in tables:
                window.publish(table)
        except OSError as exc:  # the failure the race produced
            failures.append(exc)

    # A heartbeat every 0.1 ms: the status file is rewritten all the time by both threads,
    # as the follower benchmark's feeder thread and the window's own heartbeat do.
    with LiveWindow(tmp_path / "shm", artifact, series_table(64), beat=0.0001) as window:
        feeder = threading.Thread(target=feed, args=(window,))
        feeder.start()
        feeder.join(120)
        assert not feeder.is_alive()
        assert failures == []
        assert window.generations == 301
        status = read_status(window.directory)
        assert status is not None and status["generation"] == window.generation
