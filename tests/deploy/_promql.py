"""The series names a PromQL expression selects, and the expressions of the alert rules and
of the Grafana dashboard.

A tokenizer, not a parser: it drops strings, label matchers (``{...}``), ranges (``[...]``),
Grafana variables, numbers and durations, then keeps each identifier that is not a keyword,
not a function or aggregation (followed by ``(``, ``by`` or ``without``) and not a label of a
grouping clause (``by``, ``without``, ``on``, ``ignoring``, ``group_left``, ``group_right``).
That is the whole grammar these files use (a name given as ``{__name__=...}`` is refused);
``tests/deploy/test_metric_names.py`` pins it with examples.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = ["alert_expressions", "dashboard_expressions", "series_names", "unwrap_label_values"]

_TOKEN = re.compile(
    r"""
      (?P<skip>
          "(?:\\.|[^"\\])*" | '(?:\\.|[^'\\])*' | `[^`]*`      # strings
        | \{(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[^}"'])*\}  # label matchers
        | \[[^\]]*\]                                          # ranges and subqueries
        | \$\{?\w+\}?                                         # Grafana variables
        | [0-9][0-9a-zA-Z_.]*                                 # numbers and durations
        | \s+
      )
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = _GROUPING | {"offset", "bool", "and", "or", "unless", "atan2", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$", re.DOTALL)


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    for match in _TOKEN.finditer(expr):
        kind = match.lastgroup
        assert kind is not None
        if kind != "skip":
            yield kind, match.group()


def unwrap_label_values(query: str) -> str:
    """The PromQL of Grafana's ``label_values(expr, label)``; other queries as they are."""
    inner = _LABEL_VALUES.match(query)
    return query if inner is None else inner.group(1)


def series_names(expr: str) -> set[str]:
    """Metric names selected by ``expr`` (PromQL, or Grafana's ``label_values(expr, label)``)."""
    expr = unwrap_label_values(expr)
    if "__name__" in expr:
        raise ValueError(f"a series name given as a label is not supported: {expr}")
    tokens = list(_tokens(expr))
    names: set[str] = set()
    depth_skip: int | None = None  # inside the label list of a grouping clause
    depth = 0
    for i, (kind, text) in enumerate(tokens):
        if kind == "open":
            depth += 1
            continue
        if kind == "close":
            if depth_skip == depth:
                depth_skip = None
            depth -= 1
            continue
        if kind != "ident" or depth_skip is not None:
            continue
        following = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if text.lower() in _GROUPING and following[0] == "open":
            depth_skip = depth + 1
        elif text.lower() in _KEYWORDS or following[0] == "open":
            continue  # a keyword, a function, or an aggregation: sum(...)
        elif following[1].lower() not in {"by", "without"}:  # not an aggregation: sum by (...)
            names.add(text)
    return names


def alert_expressions(path: Path) -> dict[str, str]:
    """``expr`` of every rule in a Prometheus rule file, by alert (or record) name."""
    groups: list[dict[str, Any]] = yaml.safe_load(path.read_text())["groups"]
    return {
        rule.get("alert") or rule["record"]: rule["expr"]
        for group in groups
        for rule in group["rules"]
    }


def dashboard_expressions(path: Path) -> dict[str, str]:
    """Every query of a Grafana dashboard: panel targets and template variables, by a name
    (``panel title/refId`` or ``$variable``)."""
    dashboard = json.loads(path.read_text())
    out: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out[f"{panel['title']}/{target['refId']}"] = target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            out[f"${variable['name']}"] = query["query"] if isinstance(query, dict) else query
    return out
