"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp import ConfigError, Settings


def test_defaults_follow_the_shared_contract():
    s = Settings.from_env({})
    assert s.shm_dir == Path("/dev/shm/shm-forecast")
    assert s.max_data_age_ms == 10_000
    assert (s.default_inference_length, s.max_inference_length) == (1, 48)
    assert s.metrics_dir is None


def test_values_are_read():
    s = Settings.from_env(
        {
            "SHM_DIR": "/dev/shm/x",
            "MAX_DATA_AGE_MS": "500",
            "MAX_BODY_BYTES": "1000",
            "MAX_ROWS": "20",
            "MAX_GAP_STEPS": "2",
            "LOG_LEVEL": "debug",
            "PROMETHEUS_MULTIPROC_DIR": "/dev/shm/m",
        }
    )
    assert (s.shm_dir, s.max_data_age_ms, s.max_body_bytes, s.max_rows) == (
        Path("/dev/shm/x"),
        500,
        1000,
        20,
    )
    assert (s.max_gap_steps, s.log_level, s.metrics_dir) == (2, "DEBUG", Path("/dev/shm/m"))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAX_DATA_AGE_MS": "soon"}, "MAX_DATA_AGE_MS"),
        ({"MAX_DATA_AGE_MS": "0"}, "MAX_DATA_AGE_MS"),
        ({"MAX_ROWS": "-1"}, "MAX_ROWS"),
        ({"MAX_GAP_STEPS": "1.5"}, "MAX_GAP_STEPS"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        (
            {"DEFAULT_INFERENCE_LENGTH": "10", "MAX_INFERENCE_LENGTH": "5"},
            "DEFAULT_INFERENCE_LENGTH",
        ),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env(env)
