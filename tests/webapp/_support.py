"""Helpers for the webapp tests: a real shm directory and a real Gunicorn server.

The window is published with ``shm.Publisher`` and the model artifact installed as
``model-<sha256>.skops`` exactly as the daemon does; nothing is mocked. A window of many
series is published inline or in segments (``ShmWindow.layout``), with the metadata the
daemon would write for that layout.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import psutil
import pyarrow as pa

from cache_daemon.publication import build_metadata
from cache_daemon.writer import SegmentLedger
from contract import defaults
from contract.metadata import Counters
from contract.series import SERIES_ID_COLUMN, segment_of
from forecasting.train import Options, train
from scripts.sample_window import SAMPLE, install_model, sample_table, window_metadata
from shm import Publisher, segments_for
from tests.shm._tables import split_by_segment

ROOT = Path(__file__).resolve().parents[2]
STEP = 30 * 60 * 1_000_000_000


def train_artifact(
    max_lag: int = 336, horizon: int = 48, tiers: tuple[int, ...] | None = None
) -> bytes:
    """A Ridge model of the sample series: one tier of ``max_lag`` lags, or ``tiers``."""
    options = Options(tiers=tiers or (max_lag,), horizon=horizon, candidates=("ridge",))
    data, _ = train(pd.read_parquet(SAMPLE), time_col="time", target="demand_mw", options=options)
    return data


@dataclass(repr=False)
class ShmWindow:
    """A real shm directory with a publisher, a model artifact and the daemon status file.
    ``layout``: how :meth:`publish_series` publishes a window of many series."""

    directory: Path
    artifact: bytes
    layout: Literal["inline", "segmented"] = "inline"
    publisher: Publisher = field(init=False)
    model_meta: dict[str, str] = field(init=False)
    started_ns: int = field(init=False, default_factory=time.time_ns)

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.directory)
        self.model_meta = install_model(self.directory, self.artifact)

    def __repr__(self) -> str:  # short, for hypothesis's reports of failing examples
        return f"ShmWindow({str(self.directory)!r})"

    def publish(
        self,
        rows: int | None = 1000,
        *,
        end: int | None = None,
        state: str = "live",
        model: dict[str, str] | None = None,
    ) -> int:
        table = sample_table(rows, end=end)
        meta = window_metadata(table, self.model_meta if model is None else model, state=state)
        return self.publisher.publish(table, metadata=meta)

    def publish_table(
        self, table: pa.Table, *, state: str = "live", model: dict[str, str] | None = None
    ) -> int:
        """Publish ``table`` as it is, with the metadata the daemon would write."""
        meta = window_metadata(table, self.model_meta if model is None else model, state=state)
        return self.publisher.publish(table, metadata=meta)

    def publish_series(
        self,
        parts: dict[str, pa.Table],
        *,
        segments: int | None = None,
        changed: Collection[str] | None = None,
        state: str = "live",
        model: dict[str, str] | None = None,
    ) -> int:
        """Publish one window holding each table of ``parts`` as the series named by its key
        (:func:`series_table`), in :attr:`layout`. Segmented: in ``segments`` segments
        (default ``shm.segments_for``), every segment, or only those holding a series of
        ``changed`` when the previous generation had the same count (as the daemon does)."""
        table = series_table(parts)
        if self.layout == "inline":
            return self.publish_table(table, state=state, model=model)
        count = segments if segments is not None else segments_for(len(parts))
        tables = split_by_segment(table, count)
        ledger = SegmentLedger(count, table.schema)
        for segment, part in tables.items():
            ledger.record(segment, part)
        meta = build_metadata(
            ledger.facts(),
            series=len(parts),
            offsets={},
            topic=defaults.TOPIC,
            source="replay",
            state=state,
            model=None,
            counters=Counters(),
        )
        meta.update(self.model_meta if model is None else model)
        if changed is not None and self.publisher.segments == count:
            tables = {s: tables[s] for s in {segment_of(x, count) for x in changed}}
        return self.publisher.publish_segments(tables, segments=count, metadata=meta)

    def write_status(self, **fields: Any) -> None:
        status = {
            "pid": os.getpid(),
            "state": "live",
            "source": "replay",
            "started_ns": self.started_ns,
            "heartbeat_ns": time.time_ns(),
            "last_publish_ns": time.time_ns(),
            "generation": self.publisher.generation,
            "lag": {},
            "counters": {
                "events": 7,
                "dead_letters": {"bad_json": 2},
                "dropped_late": 1,
                "publish_errors": 0,
            },
            "last_error": None,
        }
        status.update(fields)
        tmp = self.directory / ".status.tmp"
        tmp.write_text(json.dumps(status))
        tmp.replace(self.directory / "daemon-status.json")

    def close(self) -> None:
        self.publisher.close()


def series_table(parts: dict[str, pa.Table]) -> pa.Table:
    """One window of many series as the daemon publishes it: each table of ``parts`` (a
    window table, ``time`` + values) under a ``series_id`` column holding its key, rows
    sorted by id, then time."""
    tables = [
        table.add_column(0, SERIES_ID_COLUMN, pa.array([series_id] * table.num_rows, pa.string()))
        for series_id, table in sorted(parts.items())
    ]
    return pa.concat_tables(tables).combine_chunks()


def new_shm_window(
    artifact: bytes, layout: Literal["inline", "segmented"] = "inline"
) -> tuple[ShmWindow, Path]:
    parent = Path(tempfile.mkdtemp(prefix="webapp-test-", dir="/dev/shm"))
    return ShmWindow(parent / "window", artifact, layout), parent


def remove_tree(parent: Path) -> None:
    shutil.rmtree(parent, ignore_errors=True)


@contextlib.contextmanager
def shm_window(
    artifact: bytes, layout: Literal["inline", "segmented"] = "inline"
) -> Iterator[ShmWindow]:
    """A window from :func:`new_shm_window`, closed and removed on the way out."""
    win, parent = new_shm_window(artifact, layout)
    try:
        yield win
    finally:
        win.close()
        remove_tree(parent)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def loopback_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port (not listening yet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class GunicornServer:
    """``gunicorn -c gunicorn.conf.py webapp.wsgi:app`` on a loopback socket bound here.

    The listening socket is created by the test and passed as ``fd://N``, so no port can be
    taken by someone else between choosing and binding it. ``args`` are extra command-line
    options (they override the configuration file, e.g. ``("--worker-class", "gevent")``).
    ``sock``: a socket from :func:`loopback_socket` to serve on, when the port must be known
    before the server starts (servers that name each other).
    """

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int = 3,
        args: tuple[str, ...] = (),
        sock: socket.socket | None = None,
    ) -> None:
        self._sock = sock or loopback_socket()
        self.port = self._sock.getsockname()[1]
        fd = self._sock.fileno()
        full_env = {
            **os.environ,
            "WEB_BIND": f"fd://{fd}",
            "WEB_CONCURRENCY": str(workers),
            "WEB_ACCESS_LOG": "",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log = Path(tempfile.mkstemp(prefix="gunicorn-", suffix=".log")[1])
        self._log_fh = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *args, "webapp.wsgi:app"],
            cwd=ROOT,
            env=full_env,
            pass_fds=(fd,),
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
        )
        self.workers = workers

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-3000:]}")
            if len(self.worker_pids()) == self.workers:
                try:
                    if self.request("GET", "/healthz").status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn not up: {self.log.read_text()[-3000:]}")

    def worker_pids(self) -> set[int]:
        try:
            return {c.pid for c in psutil.Process(self.proc.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def post_json(self, path: str, payload: Any) -> Reply:
        return self.request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s) and remove its log; the log's
        last text stays in :attr:`final_log`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._sock.close()
        self._log_fh.close()
        self.final_log = self.log.read_text(errors="replace") if self.log.exists() else ""
        self.log.unlink(missing_ok=True)
