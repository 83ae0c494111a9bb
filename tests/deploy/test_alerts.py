"""The alert rules: promtool accepts them and their unit tests pass, every alert is tested
both ways and has a severity, a summary and a runbook section, and the kustomize tree carries
exactly the same rules as a PrometheusRule.

promtool comes from Debian's ``prometheus`` package (``make system-tools`` installs it as
root; CI has it). Without it the promtool tests are skipped with that reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from scripts.prometheus_rule import RULES, TARGET, render
from tests.deploy._manifests import ROOT, find
from tests.deploy._manifests import render as kustomize

PROMETHEUS = ROOT / "deploy" / "prometheus"
UNIT_TESTS = PROMETHEUS / "alerts.test.yaml"
RUNBOOK = ROOT / "docs" / "operations.md"
MONITORING = ROOT / "deploy" / "k8s" / "monitoring"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: `make system-tools` installs Debian's prometheus "
    "package (needs root)",
)

Doc = dict[str, Any]


def _alerts(groups: list[Doc]) -> list[Doc]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


ALERTS = _alerts(yaml.safe_load(RULES.read_text())["groups"])


def promtool(*args: str | Path, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *map(str, args)],
        check=False,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_promtool
def test_promtool_accepts_the_rule_file() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_the_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", UNIT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_the_unit_tests_catch_a_worker_check_that_fires_on_normal_publishing(
    tmp_path: Path,
) -> None:
    """Comparing the workers at one instant is the tempting rule; under load workers differ
    by a few generations all the time, and the unit tests must reject it."""
    naive = RULES.read_text().replace(
        "< max without (pid) (webapp_worker_generation offset 30s)",
        "!= max without (pid) (webapp_worker_generation)",
    )
    assert naive != RULES.read_text()
    (tmp_path / "alerts.yaml").write_text(naive)
    shutil.copy(UNIT_TESTS, tmp_path)
    result = promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "workers a few generations apart" in result.stdout + result.stderr


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {rule["alert"] for rule in ALERTS}
    assert len(names) == len(ALERTS), "alert names are unique"
    assert names - fired == set(), "alerts never shown to fire"
    assert names - silent == set(), "alerts never shown to stay silent"
    assert fired | silent <= names, "tests of alerts that do not exist"


def _runbook_sections() -> dict[str, str]:
    """``### Name`` sections of docs/operations.md by their GitHub anchor."""
    parts = re.split(r"^### (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {parts[i].strip().lower(): parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.mark.parametrize("rule", ALERTS, ids=[rule["alert"] for rule in ALERTS])
def test_every_alert_has_severity_summary_and_a_runbook_section(rule: Doc) -> None:
    assert rule["labels"]["severity"] in {"warning", "critical"}
    assert rule["annotations"]["summary"].strip()
    path, _, anchor = rule["annotations"]["runbook"].partition("#")
    assert path == "docs/operations.md" and anchor == rule["alert"].lower()
    section = _runbook_sections().get(anchor)
    assert section is not None, f"no section `### {rule['alert']}` in {RUNBOOK}"
    for part in ("**Means:**", "**Check:**", "**Do:**"):
        assert part in section, f"{rule['alert']}: the runbook section lacks {part}"


def test_every_runbook_section_belongs_to_an_alert() -> None:
    assert set(_runbook_sections()) == {rule["alert"].lower() for rule in ALERTS}


def test_the_prometheus_rule_is_generated_from_the_rule_file() -> None:
    assert TARGET.read_text() == render(RULES.read_text()), (
        "deploy/k8s/monitoring/prometheusrule.yaml is out of date: "
        "run python -m scripts.prometheus_rule"
    )


def test_the_generator_refuses_a_file_without_groups() -> None:
    with pytest.raises(ValueError, match="no top-level `groups` list"):
        render("rules: []\n")


@pytest.fixture(scope="module")
def monitoring() -> Doc:
    (rule,) = find(kustomize(MONITORING), "PrometheusRule")
    return rule


def test_the_kustomize_tree_carries_the_same_rules(monitoring: Doc) -> None:
    (deployment,) = find(kustomize(ROOT / "deploy" / "k8s" / "base"), "Deployment")
    assert monitoring["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitoring["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert monitoring["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_kubernetes_validate_has_no_schema_for_the_operator_kind(monitoring: Doc) -> None:
    """Why the PrometheusRule is checked by promtool here and left out of the schema test of
    tests/deploy/test_manifests.py: kubernetes-validate knows only Kubernetes' own kinds. If
    this fails, it has learnt the CRD and the document should be validated like the others."""
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitoring, kubernetes_validate.latest_version(), strict=True)


@needs_promtool
def test_promtool_accepts_the_rendered_prometheus_rule(monitoring: Doc, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": monitoring["spec"]["groups"]}))
    result = promtool("check", "rules", rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout
