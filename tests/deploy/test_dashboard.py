"""The Grafana dashboard: valid JSON with a Prometheus data-source variable that every panel
uses, the panels the operators need, and PromQL that promtool accepts in every query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._manifests import ROOT
from tests.deploy._promql import dashboard_expressions, unwrap_label_values

DASHBOARD = ROOT / "deploy" / "grafana" / "shm-forecast.json"
PROMTOOL = shutil.which("promtool")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Panel titles (lower case) that must exist, by the question they answer.
REQUIRED = {
    "request rate",
    "errors",
    "latency percentiles (/predict)",
    "data age",
    "generation per worker",
    "ingest rate",
    "lag",
    "dead letters and publish errors",
    "window rows",
    "memory of the shm volume",
}

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def dashboard() -> Doc:
    loaded: Doc = json.loads(DASHBOARD.read_text())
    return loaded


def test_a_prometheus_data_source_variable_feeds_every_query(dashboard: Doc) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE, variable["name"]
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_the_panels_operators_need_are_there_once_and_fit_the_grid(dashboard: Doc) -> None:
    titles = [p["title"].lower() for p in dashboard["panels"]]
    assert REQUIRED - set(titles) == set()
    assert len(titles) == len(set(titles))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36


def _as_promql(query: str) -> str:
    """Grafana's variables replaced by what they expand to (a range, a regex of pods)."""
    expr = unwrap_label_values(query).replace("$__rate_interval", "5m")
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


@pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: `make system-tools` installs Debian's prometheus "
    "package (needs root)",
)
def test_promtool_accepts_every_query(tmp_path: Path) -> None:
    exprs = dashboard_expressions(DASHBOARD)
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _as_promql(expr)}
        for i, expr in enumerate(exprs.values())
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
