"""``make run`` = ``python -m scripts.run_local``: the whole service on this machine, no Kafka.

1. Trains a model artifact from the sample series into ``.run/model.skops`` (with its
   ``.sha256`` sidecar) unless ``MODEL_PATH`` names an existing one.
2. Starts ``python -m cache_daemon`` (replay source unless ``DAEMON_SOURCE`` says otherwise),
   which publishes the window and the model into ``SHM_DIR``. With ``RUN_DATA`` (``make run
   DATA=<parquet> MODEL=<artifact>``) it replays that file instead of the sample: the column
   names come from the artifact, and every series is written into ``.run/replay.parquet`` on
   the model's calendar (short gaps interpolated; ``time``, the target column and the series
   id), each replayed under its id.
3. Starts ``gunicorn -c gunicorn.conf.py webapp.wsgi:app`` on ``127.0.0.1:$PORT`` (8000).

Both run as children in their own sessions, so a terminal's Ctrl-C reaches only this
process: the first SIGINT/SIGTERM stops Gunicorn, then the daemon, each with SIGTERM and a
grace period; a second signal kills them at once.

The daemon is supervised as the kubelet supervises the sidecar in the pod
(:mod:`scripts._supervise`): when it exits it is restarted with a backoff (0.5 s doubling to
30 s), with a log line giving its exit status and last log line, while Gunicorn keeps serving
the last generation. If Gunicorn dies (its master already replaces dead workers), the daemon
is stopped and the exit status is 1.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from contract import defaults
from contract.errors import ConfigError
from contract.series import SERIES_ID_COLUMN
from contract.settings import SharedSettings, env
from forecasting import ForecastingError, load_file
from forecasting.gaps import segments
from forecasting.train import Options, load_frame, train, write_artifact
from scripts._supervise import DaemonSupervisor
from webapp.server_settings import settings_or_exit

__all__ = ["LocalRun", "RunSettings", "main"]

log = logging.getLogger("scripts.run_local")

ROOT = defaults.REPO_ROOT
SAMPLE = defaults.SAMPLE_PATH
GRACE_S = 25.0


class RunSettings(SharedSettings):
    """The variables of ``make run`` itself, and the shared ones (it gives the daemon and
    Gunicorn the same ``SHM_DIR``)."""

    run_dir: Path = env(
        "RUN_DIR", ROOT / ".run", "where `make run` keeps the model artifact it trains"
    )
    model_path: Path | None = env(
        "MODEL_PATH",
        None,
        "the model artifact served (its digest in `<path>.sha256`); trained from "
        "the sample series when it does not exist",
        json_schema_extra={"doc_default": "`<RUN_DIR>/model.skops`"},
    )
    data_path: Path | None = env(
        "RUN_DATA",
        None,
        "a parquet file replayed instead of the sample (`make run DATA=...`), read with the "
        "column names of the model artifact, which must exist",
    )


@dataclass(frozen=True)
class LocalRun:
    """What to run: :class:`RunSettings`, and the port Gunicorn will listen on."""

    run_dir: Path
    model_path: Path
    shm_dir: str
    port: str
    data_path: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LocalRun:
        """The run ``environ`` asks for; ``SystemExit`` naming a variable that is not valid
        (``PORT`` and the other Gunicorn variables are checked as Gunicorn will)."""
        try:
            settings = RunSettings.from_env(environ)
        except ConfigError as exc:
            raise SystemExit(str(exc)) from None
        return cls(
            run_dir=settings.run_dir,
            model_path=settings.model_path or settings.run_dir / "model.skops",
            shm_dir=str(settings.shm_dir),
            port=str(settings_or_exit(environ).port),
            data_path=settings.data_path,
        )


def ensure_model(path: Path) -> None:
    """Train from the sample series when ``path`` (or its sidecar) does not exist."""
    if path.exists() and path.with_name(path.name + ".sha256").exists():
        log.info("using model artifact %s", path)
        return
    log.info("no model artifact at %s: training one from %s", path, SAMPLE.name)
    # Ridge only: the backtest's winner on the sample (docs/forecasting.md), in seconds
    # rather than the minutes that gradient boosting's comparison takes.
    data, report = train(pd.read_parquet(SAMPLE), options=Options(candidates=("ridge",)))
    write_artifact(str(path), data)
    log.info("trained %s: holdout scores %s", report["model_version"], report["scores"])


def replay_file(data: Path, model_path: Path, dest: Path) -> dict[str, str]:
    """Write every series of ``data`` as the daemon's replay file ``dest`` (``time``, the
    model's target and, for a model with a series column, the series id; each series' last
    run on the model's calendar) and return the daemon's variables for it.

    ``SystemExit`` naming the problem when the model is missing or the file does not fit it.
    """
    sidecar = model_path.with_name(model_path.name + ".sha256")
    try:
        model = load_file(model_path, sha256=sidecar.read_text().split()[0])
        frame = pd.read_parquet(data)
        series = load_frame(
            frame, time_col=model.time_col, target=model.target, series_col=model.series_col
        )
    except (OSError, IndexError, ForecastingError) as exc:
        raise SystemExit(f"make run DATA={data} MODEL={model_path}: {exc}") from None
    tables = []
    for sid, (t, v) in series.items():
        try:
            parts = segments(t, v, model.frequency, max_gap_steps=model.max_gap_steps, series=sid)
        except ForecastingError as exc:
            raise SystemExit(f"make run DATA={data}: {exc}") from None
        if not parts or len(parts[-1]) < 2:
            log.warning("series %r has no run of two rows to replay; left out", sid)
            continue
        columns: dict[str, Any] = {
            "time": pa.array(parts[-1].times, type=pa.timestamp("ns", tz="UTC")),
            model.target: pa.array(parts[-1].values, type=pa.float64()),
        }
        if model.series_col is not None:
            columns[SERIES_ID_COLUMN] = pa.array([sid] * len(parts[-1]), type=pa.string())
        tables.append(pa.table(columns))
    if not tables:
        raise SystemExit(f"make run DATA={data}: no series has two rows to replay")
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), dest)
    log.info(
        "replaying %s (%d series, %s) with model %s",
        data,
        len(tables),
        model.frequency.alias,
        model.version,
    )
    return {"REPLAY_PATH": str(dest), "SERIES_COLUMNS": model.target, "DAEMON_SOURCE": "replay"}


class _Stop:
    def __init__(self) -> None:
        self.requested = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self.requested += 1


def _terminate(procs: list[tuple[str, subprocess.Popen[bytes]]], *, force: bool) -> None:
    for name, proc in procs:  # reverse start order: web first, then the publisher
        if proc.poll() is not None:
            continue
        log.info("%s %s (pid %d)", "killing" if force else "stopping", name, proc.pid)
        proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)


def _wait_all(procs: list[tuple[str, subprocess.Popen[bytes]]], stop: _Stop) -> None:
    deadline = time.monotonic() + GRACE_S
    forced = False
    for name, proc in procs:
        while proc.poll() is None:
            if not forced and (stop.requested > 1 or time.monotonic() > deadline):
                _terminate(procs, force=True)
                forced = True
            time.sleep(0.1)
        log.info("%s exited with %s", name, proc.returncode)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="run_local: %(message)s")
    run = LocalRun.from_env(os.environ)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    replay: dict[str, str] = {}
    if run.data_path is not None:
        replay = replay_file(run.data_path, run.model_path, run.run_dir / "replay.parquet")
    else:
        ensure_model(run.model_path)

    stop = _Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = {
        **os.environ,
        "SHM_DIR": run.shm_dir,
        "MODEL_PATH": str(run.model_path),
        "PORT": run.port,
        **replay,
    }
    env.setdefault("DAEMON_SOURCE", "replay")

    def spawn_daemon() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "cache_daemon"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stderr=subprocess.PIPE,
        )

    daemon = DaemonSupervisor(spawn_daemon, Path(run.shm_dir))
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    log.info(
        "serving on http://127.0.0.1:%s (try: curl -XPOST -H 'Content-Type: application/json' "
        "-d '{}' http://127.0.0.1:%s/predict); Ctrl-C stops",
        run.port,
        run.port,
    )
    status = 0
    while not stop.requested:
        if web.poll() is not None:
            log.error("gunicorn exited with %s; stopping the rest", web.returncode)
            status = 1
            break
        daemon.poll()
        if daemon.refused is not None:
            status = 2
            break
        time.sleep(0.1)
    daemon.stop_restarting()
    procs = [("gunicorn", web), ("cache_daemon", daemon.proc)]
    _terminate(procs, force=False)
    _wait_all(procs, stop)
    return status


if __name__ == "__main__":
    sys.exit(main())
