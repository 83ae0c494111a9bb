"""Configuration from the environment: defaults, source choice, errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cache_daemon.config import DaemonConfig
from cache_daemon.errors import ConfigError
from contract.series import MAX_SERIES_ID_BYTES


def test_defaults_use_replay_without_kafka() -> None:
    cfg = DaemonConfig.from_env({})
    assert cfg.source == "replay"
    assert cfg.shm_dir == Path("/dev/shm/shm-forecast")
    assert cfg.kafka_topic == "demand"
    assert cfg.kafka_dlq_topic == "demand.dlq"
    assert cfg.window_rows == 4032
    assert cfg.window_duration_s is None
    assert cfg.columns == ("demand_mw",)
    assert cfg.replay_path.is_file()
    assert (cfg.default_series_id, cfg.max_series, cfg.series_ttl_ns) == ("default", 100_000, None)


def test_series_settings() -> None:
    cfg = DaemonConfig.from_env(
        {"DEFAULT_SERIES_ID": "meter-ä", "MAX_SERIES": "3", "SERIES_TTL_S": "1.5"}
    )
    assert (cfg.default_series_id, cfg.max_series, cfg.series_ttl_ns) == (
        "meter-ä",
        3,
        1_500_000_000,
    )
    assert DaemonConfig.from_env({"SERIES_TTL_S": "0"}).series_ttl_ns is None


@given(st.text(max_size=140))
def test_any_default_series_id_is_taken_or_refused_naming_the_variable(name: str) -> None:
    try:
        cfg = DaemonConfig.from_env({"DEFAULT_SERIES_ID": name})
    except ConfigError as exc:
        assert exc.variable == "DEFAULT_SERIES_ID"
        assert len(name.strip().encode("utf-8")) > MAX_SERIES_ID_BYTES
        return
    # Values are stripped, and blank is unset (the default).
    expected = name.strip() or "default"
    assert cfg.default_series_id == expected


def test_kafka_is_default_when_bootstrap_servers_set() -> None:
    cfg = DaemonConfig.from_env(
        {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092, h2:9093", "KAFKA_TOPIC": "t1"}
    )
    assert cfg.source == "kafka"
    assert cfg.kafka_bootstrap_servers == ("127.0.0.1:9092", "h2:9093")
    assert cfg.kafka_dlq_topic == "t1.dlq"


def test_daemon_source_overrides() -> None:
    cfg = DaemonConfig.from_env({"KAFKA_BOOTSTRAP_SERVERS": "h:1", "DAEMON_SOURCE": "replay"})
    assert cfg.source == "replay"


def test_full_s3_settings() -> None:
    cfg = DaemonConfig.from_env(
        {
            "S3_ENDPOINT": "127.0.0.1:9000",
            "S3_ACCESS_KEY": "a",
            "S3_SECRET_KEY": "b",
            "S3_SECURE": "true",
            "SNAPSHOT_BUCKET": "snap",
            "SNAPSHOT_KEY": "w.parquet",
            "MODEL_BUCKET": "models",
            "MODEL_KEY": "m.skops",
            "WINDOW_ROWS": "0",
            "WINDOW_DURATION_S": "86400",
            "WINDOW_GAP_POLICY": "reindex",
        }
    )
    assert cfg.s3 is not None and cfg.s3.secure and cfg.s3.region == "us-east-1"
    assert cfg.window_rows is None
    assert cfg.window_duration_ns == 86_400 * 10**9
    assert cfg.gap_policy == "reindex"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DAEMON_SOURCE": "kafka"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"DAEMON_SOURCE": "files"}, "DAEMON_SOURCE"),
        ({"PUBLISH_LAYOUT": "columns"}, "PUBLISH_LAYOUT"),
        ({"SERIES_PER_SEGMENT": "0"}, "SERIES_PER_SEGMENT"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "nohost"}, "KAFKA_BOOTSTRAP_SERVERS"),
        ({"KAFKA_TOPIC": "bad topic"}, "KAFKA_TOPIC"),
        ({"KAFKA_DLQ_TOPIC": "demand"}, "KAFKA_DLQ_TOPIC"),
        ({"S3_ENDPOINT": "http://h:9000", "S3_ACCESS_KEY": "a"}, "S3_ENDPOINT"),
        ({"S3_ENDPOINT": "h:9000"}, "S3_ACCESS_KEY"),
        ({"S3_ENDPOINT": "h:9000", "S3_ACCESS_KEY": "a", "S3_SECURE": "maybe"}, "S3_SECURE"),
        ({"SNAPSHOT_BUCKET": "snap"}, "SNAPSHOT_KEY"),
        ({"SNAPSHOT_BUCKET": "snap", "SNAPSHOT_KEY": "k"}, "S3_ENDPOINT"),
        ({"SNAPSHOT_BUCKET": "B", "SNAPSHOT_KEY": "k"}, "SNAPSHOT_BUCKET"),
        ({"MODEL_BUCKET": "a_b", "MODEL_KEY": "k"}, "MODEL_BUCKET"),
        ({"MODEL_KEY": "k"}, "MODEL_BUCKET"),
        (
            {
                "MODEL_PATH": "/m",
                "MODEL_BUCKET": "models",
                "MODEL_KEY": "k",
                "S3_ENDPOINT": "h:1",
                "S3_ACCESS_KEY": "a",
            },
            "MODEL_PATH",
        ),
        ({"WINDOW_ROWS": "ten"}, "WINDOW_ROWS"),
        ({"WINDOW_ROWS": "-1"}, "WINDOW_ROWS"),
        ({"WINDOW_ROWS": "0"}, "WINDOW_ROWS"),
        ({"WINDOW_DURATION_S": "nan"}, "WINDOW_DURATION_S"),
        ({"WINDOW_GAP_POLICY": "fill"}, "WINDOW_GAP_POLICY"),
        ({"PUBLISH_INTERVAL_MS": "0"}, "PUBLISH_INTERVAL_MS"),
        ({"SHM_KEEP_GENERATIONS": "0"}, "SHM_KEEP_GENERATIONS"),
        ({"MAX_DATA_AGE_MS": "x"}, "MAX_DATA_AGE_MS"),
        ({"REPLAY_RATE": "inf"}, "REPLAY_RATE"),
        ({"REPLAY_RATE": "0"}, "REPLAY_RATE"),
        ({"SERIES_COLUMNS": "a,a"}, "SERIES_COLUMNS"),
        ({"SERIES_COLUMNS": "time"}, "SERIES_COLUMNS"),
        ({"SERIES_COLUMNS": "a b"}, "SERIES_COLUMNS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"MODEL_POLL_INTERVAL_S": "0"}, "MODEL_POLL_INTERVAL_S"),
        ({"DEFAULT_SERIES_ID": "x" * 129}, "DEFAULT_SERIES_ID"),
        ({"MAX_SERIES": "0"}, "MAX_SERIES"),
        ({"MAX_SERIES": "many"}, "MAX_SERIES"),
        ({"SERIES_TTL_S": "-1"}, "SERIES_TTL_S"),
        ({"SERIES_TTL_S": "1e12"}, "SERIES_TTL_S"),
        ({"SERIES_TTL_S": "inf"}, "SERIES_TTL_S"),
    ],
)
def test_errors_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        DaemonConfig.from_env(env)
    assert info.value.variable == variable
    assert str(info.value).startswith(variable)


def test_empty_values_count_as_unset() -> None:
    assert DaemonConfig.from_env({"KAFKA_BOOTSTRAP_SERVERS": " ", "WINDOW_ROWS": ""}).source == (
        "replay"
    )


def test_config_is_frozen() -> None:
    cfg = DaemonConfig.from_env({})
    with pytest.raises(AttributeError):
        cfg.kafka_topic = "x"  # type: ignore[misc]
