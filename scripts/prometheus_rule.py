"""The alert rules as a Prometheus Operator ``PrometheusRule``, generated from the rule file.

``deploy/prometheus/alerts.yaml`` is the one source (``promtool`` checks and unit-tests it);
``deploy/k8s/monitoring/prometheusrule.yaml`` carries the same groups for clusters that load
rules through the operator::

    python -m scripts.prometheus_rule           # rewrite the PrometheusRule
    python -m scripts.prometheus_rule --check   # exit 1 if it differs from alerts.yaml

``tests/deploy/test_alerts.py`` runs the check, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

__all__ = ["RULES", "TARGET", "render"]

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
TARGET = ROOT / "deploy" / "k8s" / "monitoring" / "prometheusrule.yaml"
NAME = "shm-forecast"
_HEADER = (
    "# Generated from deploy/prometheus/alerts.yaml by `python -m scripts.prometheus_rule`:\n"
    "# edit that file and run the command again (tests/deploy fails while the two differ).\n"
)


def render(rules_text: str) -> str:
    """The PrometheusRule document (YAML text) holding the groups of a Prometheus rule file.

    Raises ``ValueError`` when the text is not a rule file with a ``groups`` list.
    """
    rules = yaml.safe_load(rules_text)
    if not isinstance(rules, dict) or not isinstance(rules.get("groups"), list):
        raise ValueError("not a Prometheus rule file: no top-level `groups` list")
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": NAME},
        "spec": {"groups": rules["groups"]},
    }
    # A wide line keeps each expression on one line, as readable as the source allows.
    return _HEADER + yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the PrometheusRule from alerts.yaml.")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    try:
        wanted = render(RULES.read_text())
    except (ValueError, yaml.YAMLError) as exc:
        print(f"{RULES}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != wanted:
            print(f"{TARGET} differs from {RULES}: run python -m scripts.prometheus_rule")
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
