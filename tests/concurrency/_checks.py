"""Checks shared by the scenarios, and how each one reports what it checked.

Every scenario ends with :func:`figures`: one JSON line per scenario, printed in pytest's
terminal summary ("concurrency figures") and appended to ``reports/concurrency.jsonl``, so
the counts in the README come from runs, not from memory.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.concurrency._http import Result

__all__ = ["SESSION", "figures", "json_ok", "regressions"]

ROOT = Path(__file__).resolve().parents[2]
# Lines of this session, printed again in the terminal summary (see conftest.py).
SESSION: list[str] = []


def figures(scenario: str, **values: Any) -> None:
    line = {"scenario": scenario, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    line.update(values)
    text = json.dumps(line, sort_keys=False)
    SESSION.append(text)
    sys.stdout.write(f"\nFIGURES {scenario} {text}\n")
    reports = ROOT / "reports"
    reports.mkdir(exist_ok=True)
    with (reports / "concurrency.jsonl").open("a") as sink:
        sink.write(text + "\n")


def regressions(observations: list[tuple[int, int, int, int]]) -> list[str]:
    """Per worker, answers that carry a lower generation than an answer the same worker had
    already given before the request was sent.

    ``observations``: ``(pid, generation, sent_ns, done_ns)``. Only answers that had fully
    arrived before the later request left count as "before", so the check never depends on
    how the kernel ordered concurrent requests.
    """
    by_pid: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for obs in observations:
        by_pid[obs[0]].append(obs)
    problems = []
    for pid, items in by_pid.items():
        done_order = sorted(items, key=lambda o: o[3])
        best, j = 0, 0
        for _, gen, sent, _done in sorted(items, key=lambda o: o[2]):
            while j < len(done_order) and done_order[j][3] < sent:
                best = max(best, done_order[j][1])
                j += 1
            if gen < best:
                problems.append(f"worker {pid} answered generation {gen} after {best}")
    return problems


def json_ok(results: list[Result]) -> list[Result]:
    """The complete 200 answers."""
    return [r for r in results if r.kind == "ok" and r.status == 200]
