"""Helpers shared by the daemon tests: run the service, kill it and start another, wait for
generations and status, put a snapshot in S3, read offsets, values and dead letters."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition

from cache_daemon.bootstrap import snapshot_parquet
from cache_daemon.config import DaemonConfig
from cache_daemon.service import run_service
from cache_daemon.status import read_status
from shm import Reader, Snapshot

if TYPE_CHECKING:
    from tests._stack import StackHandle

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


# How long a daemon may take to reach a state: generous, as a bound on a wait and not a
# speed requirement (a daemon starting on a machine at load average 12 took over 15 s).
REACH_S = 60.0


def wait_for(
    reader: Reader, pred: Callable[[Snapshot], bool], timeout: float = REACH_S, what: str = ""
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
    directory: Path,
    pred: Callable[[dict[str, Any]], bool],
    timeout: float = REACH_S,
    what: str = "",
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


def kill_mid_catch_up_and_restart(
    env: Mapping[str, str],
    reader: Reader,
    logs: Path,
    *,
    total: int,
    after_kill: Callable[[], dict[int, int]],
    timeout: float = 30,
) -> Snapshot:
    """Start the daemon (``env``), SIGKILL it once it published some but not all of the
    ``total`` records, call ``after_kill`` (which may produce more and returns the offsets to
    reach), then start another and return its first generation reaching them; it must stop
    cleanly on SIGTERM. Their logs go to ``logs``/victim.log and survivor.log."""
    victim = spawn(env, logs / "victim.log")
    try:
        # Kill it in the middle of catching up: after some generations, before the end.
        wait_for(reader, lambda s: 0 < sum(offsets(s).values()) < total, timeout=30)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        assert victim.returncode == -signal.SIGKILL
        killed_at = reader.current()
        assert killed_at is not None and sum(offsets(killed_at).values()) < total
        target = after_kill()
        survivor = spawn(env, logs / "survivor.log")
        try:
            final = wait_for(reader, covers(target), timeout=timeout)
        finally:
            survivor.send_signal(signal.SIGTERM)
            survivor.wait(15)
        assert survivor.returncode == 0
    finally:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
    return final


def config(stack: StackHandle, shm_dir: Path, topic: str, **extra: str) -> DaemonConfig:
    """The daemon's settings for ``topic`` of the test stack, publishing into ``shm_dir``."""
    return DaemonConfig.from_env(
        stack.env(
            **{"SHM_DIR": str(shm_dir), "KAFKA_TOPIC": topic, "PUBLISH_INTERVAL_MS": "20", **extra}
        )
    )


def put_snapshot(
    stack: StackHandle, bucket: str, table: pa.Table, recorded: Mapping[int, int], topic: str
) -> None:
    """``table`` as the daemon's S3 snapshot ``window.parquet`` in ``bucket``, recording the
    offsets ``recorded`` of ``topic``."""
    data = snapshot_parquet(table, offsets=recorded, topic=topic)
    stack.minio().put_object(
        bucket_name=bucket, object_name="window.parquet", data=io.BytesIO(data), length=len(data)
    )


def offsets(snap: Snapshot) -> dict[int, int]:
    return {int(p): o for p, o in json.loads(snap.metadata["offsets"]).items()}


def ends(produced: list[tuple[int, int]]) -> dict[int, int]:
    """Next offset per partition after the produced ``(partition, offset)`` pairs."""
    result: dict[int, int] = {}
    for partition, offset in produced:
        result[partition] = max(result.get(partition, 0), offset + 1)
    return result


def values_by_index(snap: Snapshot) -> dict[int, float]:
    """``{step index: demand_mw}`` of a one-series window."""
    times = snap.table.column("time").cast(pa.int64()).to_pylist()
    values = snap.table.column("demand_mw").to_pylist()
    return {(t - T0_S * 10**9) // STEP_NS: v for t, v in zip(times, values, strict=True)}


def series_values(snap: Snapshot) -> dict[str, dict[int, float]]:
    """``{series id: {step index: demand_mw}}`` of a window."""
    table = snap.table
    ids = table.column("series_id").to_pylist()
    times = table.column("time").cast(pa.int64()).to_pylist()
    values = table.column("demand_mw").to_pylist()
    out: dict[str, dict[int, float]] = {}
    for sid, t, v in zip(ids, times, values, strict=True):
        out.setdefault(sid, {})[(t - T0_S * 10**9) // STEP_NS] = v
    return out


def covers(target: dict[int, int]) -> Callable[[Snapshot], bool]:
    """A predicate: the generation's offsets reach ``target`` on every partition."""

    def pred(snap: Snapshot) -> bool:
        got = offsets(snap)
        return all(got.get(p, 0) >= o for p, o in target.items())

    return pred


class Letter(NamedTuple):
    """One record of a dead-letter topic."""

    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


def consume_all(stack: StackHandle, topic: str, count: int) -> list[Letter]:
    """The first ``count`` records of partition 0 of ``topic`` (fewer after 15 s)."""
    consumer = KafkaConsumer(
        bootstrap_servers=stack.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        out: list[Letter] = []
        deadline = time.monotonic() + 15
        while len(out) < count and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                out += [Letter(m.key, m.value, dict(m.headers)) for m in messages]
        return out
    finally:
        consumer.close()
