"""Gunicorn's settings from the environment: defaults, and a bad value stops the server with a
message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.errors import ConfigError
from contract.settings import env_names
from tests.webapp._support import ROOT
from webapp.metrics_dir import claim_metrics_dir
from webapp.server_settings import BLAS_VARIABLES, GunicornSettings


def test_defaults_suit_one_container() -> None:
    s = GunicornSettings.from_env({})
    assert s.bind_address == "127.0.0.1:8000"
    assert s.gunicorn_worker_class == "webapp.gevent_worker.GeventWorker"
    assert (s.threads_per_worker, s.keepalive, s.preload, s.access_log) == (1, 5, True, "-")
    assert s.workers >= 2
    assert s.blas_environment() == dict.fromkeys(BLAS_VARIABLES, "1")
    assert s.accept_defer_ms == 20.0  # docs/web-api.md, "Which worker takes a new connection"


def test_values_are_read() -> None:
    s = GunicornSettings.from_env(
        {
            "WEB_HOST": "0.0.0.0",
            "PORT": "9000",
            "WEB_WORKER_CLASS": "gthread",
            "WEB_THREADS": "4",
            "WEB_KEEPALIVE": "0",
            "WEB_PRELOAD": "false",
            "WEB_ACCESS_LOG": "",
            "LOG_LEVEL": "warning",
        }
    )
    assert (s.bind_address, s.gunicorn_worker_class, s.threads_per_worker) == (
        "0.0.0.0:9000",
        "gthread",
        4,
    )
    assert (s.keepalive, s.preload, s.access_log, s.log_level) == (0, False, None, "WARNING")
    assert GunicornSettings.from_env({"WEB_BIND": "fd://3", "PORT": "1"}).bind_address == "fd://3"


def test_every_variable_has_a_description() -> None:
    fields = GunicornSettings.model_fields
    assert all(fields[name].description for name in env_names(GunicornSettings).values())


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"WEB_WORKER_CLASS": "tornado"}, "WEB_WORKER_CLASS"),
        ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
        ({"PORT": "http"}, "PORT"),
        ({"WEB_PRELOAD": "maybe"}, "WEB_PRELOAD"),
        ({"WEB_KEEPALIVE": "0"}, "WEB_KEEPALIVE"),  # gevent needs it to bound a request's head
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"WEB_ACCEPT_DEFER_MS": "-1"}, "WEB_ACCEPT_DEFER_MS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        GunicornSettings.from_env(env)
    assert info.value.variable == variable


def test_gunicorn_exits_naming_the_variable() -> None:
    env = {**os.environ, "WEB_WORKER_CLASS": "tornado"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "webapp.wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "WEB_WORKER_CLASS: " in proc.stderr, proc.stderr


def test_the_metrics_directory_is_claimed_once_per_master(tmp_path: Path) -> None:
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_1.db").write_bytes(b"stale")
    environ = {"PROMETHEUS_MULTIPROC_DIR": str(given)}
    first = claim_metrics_dir(environ, 41)
    assert (first.path, first.created) == (given, False)
    assert not list(given.iterdir())  # samples of an earlier server are wiped
    (given / "counter_2.db").write_bytes(b"live")
    again = claim_metrics_dir(environ, 41)  # a reload re-runs the configuration
    assert again == first and (given / "counter_2.db").exists()
    fresh = claim_metrics_dir({}, 42)
    try:
        assert fresh.created and fresh.path.is_dir()
    finally:
        fresh.path.rmdir()
