"""Load tests of the forecasting service: ``locust -f locustfiles --host http://...``.

Locust loads ``locustfiles/locustfile.py`` (the only public module besides ``errors``): the
users, one per mode (cached, synthetic, real, bad, ingest), the load shape and the SLO gates.
This package's own API, below, is pure: payload generators, response checks, gates, shapes
and configuration. Importing it does not import Locust (whose import monkey-patches the
process for gevent), so tests and other tools can use the generators safely.
"""

from locustfiles._bad import BadCase, bad_cases
from locustfiles._checks import Verdict, check_forecast, check_problem
from locustfiles._config import MODES, LoadConfig, S3Location
from locustfiles._gates import Gate, GateResult, GateSpec, RunSummary, evaluate
from locustfiles._series import (
    UTC_ZONE,
    ForecastRequest,
    Series,
    Zone,
    cached_request,
    check_times,
    format_times,
    ingest_event,
    parse_zone,
    real_request,
    seasonal_values,
    synthetic_request,
)
from locustfiles._shapes import SHAPES, target
from locustfiles._source import load_series, series_from_table
from locustfiles.errors import (
    ConfigError,
    LoadTestError,
    PayloadError,
    PreflightError,
    SeriesError,
)

__all__ = [
    "MODES",
    "SHAPES",
    "UTC_ZONE",
    "BadCase",
    "ConfigError",
    "ForecastRequest",
    "Gate",
    "GateResult",
    "GateSpec",
    "LoadConfig",
    "LoadTestError",
    "PayloadError",
    "PreflightError",
    "RunSummary",
    "S3Location",
    "Series",
    "SeriesError",
    "Verdict",
    "Zone",
    "bad_cases",
    "cached_request",
    "check_forecast",
    "check_problem",
    "check_times",
    "evaluate",
    "format_times",
    "ingest_event",
    "load_series",
    "parse_zone",
    "real_request",
    "seasonal_values",
    "series_from_table",
    "synthetic_request",
    "target",
]
