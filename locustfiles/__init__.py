"""Load tests of the forecasting service: ``locust -f locustfiles --host http://...``.

Locust loads ``locustfiles/locustfile.py``, the only module without a leading underscore:
the users (one per mode: cached, synthetic, real, bad, ingest, series), the load shape and the SLO
gates. The API below is pure (payload generators, response checks, gates, shapes,
configuration and the generator's own CPU): importing it does not import Locust, whose
import patches the process for gevent.
"""

from locustfiles._config import SHAPES, LoadConfig, target
from locustfiles._cpu import CpuMeter, CpuUsage
from locustfiles._errors import ConfigError, LoadTestError, PayloadError, SeriesError
from locustfiles._payloads import (
    UTC_ZONE,
    BadCase,
    EncodedRequest,
    ForecastRequest,
    Series,
    bad_cases,
    cached_request,
    check_times,
    format_times,
    ingest_event,
    load_series,
    parse_zone,
    real_request,
    series_request,
    synthetic_request,
)
from locustfiles._verdicts import GateSpec, RunSummary, check_forecast, check_problem, evaluate

__all__ = [
    "SHAPES",
    "UTC_ZONE",
    "BadCase",
    "ConfigError",
    "CpuMeter",
    "CpuUsage",
    "EncodedRequest",
    "ForecastRequest",
    "GateSpec",
    "LoadConfig",
    "LoadTestError",
    "PayloadError",
    "RunSummary",
    "Series",
    "SeriesError",
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
    "series_request",
    "synthetic_request",
    "target",
]
