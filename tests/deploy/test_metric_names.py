"""Every series the alert rules and the Grafana dashboard use is exported by ``/metrics`` of
the running service (the cache daemon on the replay source and Gunicorn with several workers,
as real processes: ``tests.concurrency._service.running_service``).

Names are compared as Prometheus stores them: a counter family ``x`` is the series
``x_total``, a histogram ``x`` the series ``x_bucket``, ``x_count`` and ``x_sum``. A family
that the service declares but has no sample of yet (dead letters by reason on a stream without
poison records, lag by partition on the replay source) counts as exported: its series appear
with its first event.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.concurrency._service import running_service
from tests.deploy._manifests import ROOT
from tests.deploy._promql import alert_expressions, dashboard_expressions, series_names
from tests.webapp._support import train_artifact

RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "shm-forecast.json"
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("webapp_ready == 0", {"webapp_ready"}),
        (
            'sum by (route, le) (rate(x_bucket{route="/p",le=~"0.5|1"}[5m])) > 0.25',
            {"x_bucket"},
        ),
        ("min without (pid) (a) < b offset 30s", {"a", "b"}),
        ("sum(rate(a[$__rate_interval])) by (job) / ignoring(x) group_left(y) c", {"a", "c"}),
        ("increase(a[15m]) > 0 or (a unless a offset 15m) and on (job, instance) b", {"a", "b"}),
        ("timestamp(a) - a > bool 1e3", {"a"}),
        ('label_replace(a{s="by (x)"}, "d", "$1", "s", "(.*)")', {"a"}),
        ('label_values(a{job=~"$job"}, instance)', {"a"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    ],
)
def test_series_names_are_read_from_expressions(expr: str, names: set[str]) -> None:
    assert series_names(expr) == names


def test_a_name_given_as_a_label_is_refused_not_missed() -> None:
    with pytest.raises(ValueError, match="__name__"):
        series_names('{__name__="webapp_ready"}')


def _used() -> dict[str, set[str]]:
    """Series name -> where it is used."""
    used: dict[str, set[str]] = {}
    for source, path, exprs in (
        ("alerts.yaml", RULES, alert_expressions(RULES)),
        ("dashboard", DASHBOARD, dashboard_expressions(DASHBOARD)),
    ):
        assert exprs, f"no expressions found in {path}"
        for where, expr in exprs.items():
            for name in series_names(expr):
                used.setdefault(name, set()).add(f"{source}: {where}")
    return used


@dataclass(frozen=True)
class Exposition:
    sampled: set[str]  # series names with at least one sample
    declared: set[str]  # and the series names of every declared family

    @property
    def names(self) -> set[str]:
        return self.sampled | self.declared


@pytest.fixture(scope="module")
def exported() -> Exposition:
    """What ``/metrics`` exports after a little traffic of every kind."""
    with running_service(train_artifact(), workers=2) as service:
        for _ in range(8):
            assert service.predict().status == 200
        assert service.get("/no-such-route").status == 404
        assert service.get("/cache").status == 200
        reply = service.get("/metrics")
        assert reply.status == 200, reply
    sampled: set[str] = set()
    declared: set[str] = set()
    for family in text_string_to_metric_families(reply.body.decode()):
        sampled.update(sample.name for sample in family.samples)
        declared.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return Exposition(sampled, declared)


def test_every_series_of_the_alerts_and_the_dashboard_is_exported(exported: Exposition) -> None:
    used = _used()
    # The reader really found the series of the alerts, histogram buckets included.
    assert {"webapp_worker_generation", "webapp_http_request_duration_seconds_bucket"} <= set(used)
    missing = {name: sorted(where) for name, where in used.items() if name not in exported.names}
    assert missing == {}, f"not in /metrics: {missing}"


def test_the_service_samples_the_facts_the_new_alerts_need(exported: Exposition) -> None:
    """The series added for the alerts have values in a real daemon + Gunicorn layout."""
    assert {
        "daemon_start_time_seconds",
        "webapp_shm_volume_size_bytes",
        "webapp_shm_volume_free_bytes",
        "webapp_max_data_age_seconds",
        "webapp_worker_generation",
        "webapp_http_request_duration_seconds_bucket",
    } <= exported.sampled
