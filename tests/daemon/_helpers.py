"""Helpers shared by the daemon tests: run the service, wait for generations and status."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cache_daemon.config import DaemonConfig
from cache_daemon.service import run_service
from cache_daemon.status import read_status
from shm import Reader, Snapshot

ROOT = Path(__file__).resolve().parents[2]
T0_S = 960_163_200  # 2000-06-05T00:00:00Z
STEP_S = 1800
STEP_NS = STEP_S * 10**9


def stamp(i: int) -> str:
    """ISO time of the i-th half-hour step after 2000-06-05T00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0_S + i * STEP_S))


def event(i: int, value: float) -> dict[str, Any]:
    return {"time": stamp(i), "demand_mw": value}


@contextmanager
def running(config: DaemonConfig) -> Iterator[threading.Thread]:
    """Run the service in a thread; stop it (as SIGTERM would) on exit."""
    stop = threading.Event()
    failure: list[BaseException] = []

    def target() -> None:
        try:
            run_service(config, stop)
        except BaseException as exc:
            failure.append(exc)
            raise

    thread = threading.Thread(target=target, name="daemon-under-test")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "the daemon did not stop within 15 s"
    assert not failure, failure


def wait_for(
    reader: Reader, pred: Callable[[Snapshot], bool], timeout: float = 15, what: str = ""
) -> Snapshot:
    """The first snapshot satisfying ``pred`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    snap = None
    while time.monotonic() < deadline:
        snap = reader.current() if reader.directory.exists() else None
        if snap is not None and pred(snap):
            return snap
        time.sleep(0.02)
    raise AssertionError(
        f"not reached within {timeout} s: {what}; last: {snap.metadata if snap else None}"
    )


def wait_status(
    directory: Path, pred: Callable[[dict[str, Any]], bool], timeout: float = 15, what: str = ""
) -> dict[str, Any]:
    """The first status-file content satisfying ``pred`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        status = read_status(directory)
        if status is not None and pred(status):
            return status
        time.sleep(0.02)
    raise AssertionError(f"status not reached within {timeout} s: {what}; last: {status}")


def spawn(env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``python -m cache_daemon`` with ``env`` (plus PATH); its log lines are appended to
    ``log`` (a file, so a chatty child never blocks on a full pipe)."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "cache_daemon"],
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **env},
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
