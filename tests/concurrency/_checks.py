"""Checks shared by the scenarios, and how each one reports what it checked.

Every scenario ends with :func:`figures`: one JSON line per scenario, printed in pytest's
terminal summary ("concurrency figures") and appended to the file :data:`REPORT` names. That
is ``$CONCURRENCY_REPORT`` when set (``make soak`` and ``make concurrency`` point it at
``reports/concurrency.jsonl``, so the counts in ``docs/concurrency.md`` come from runs, not
from memory),
else a file in pytest's temporary directory: a plain test run writes nothing into the tree.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.concurrency._http import Result

__all__ = [
    "REPORT",
    "REPORT_VARIABLE",
    "SESSION",
    "figures",
    "json_ok",
    "regressions",
    "window_differences",
]

REPORT_VARIABLE = "CONCURRENCY_REPORT"
# Lines of this session, printed again in the terminal summary (see conftest.py).
SESSION: list[str] = []
# Where figures() appends; conftest.py sets it once per session, before any scenario runs.
REPORT: list[Path] = []


def figures(scenario: str, **values: Any) -> None:
    line = {"scenario": scenario, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    line.update(values)
    text = json.dumps(line, sort_keys=False)
    SESSION.append(text)
    sys.stdout.write(f"\nFIGURES {scenario} {text}\n")
    if not REPORT:
        raise RuntimeError("no report file: tests/concurrency/conftest.py sets REPORT")
    REPORT[0].parent.mkdir(parents=True, exist_ok=True)
    with REPORT[0].open("a") as sink:
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


def window_differences(window: dict[int, float], expected: dict[int, float]) -> dict[str, int]:
    """Counted differences between a published window (``{event index: value}``) and the rows
    it should hold: events missing, events with another value, rows that should not be there.
    All zero when the window is exact; the scenarios report these counts, not a constant."""
    return {
        "events_missing": sum(1 for i in expected if i not in window),
        "events_wrong_value": sum(1 for i, v in expected.items() if window.get(i, v) != v),
        "rows_unexpected": sum(1 for i in window if i not in expected),
    }


def json_ok(results: list[Result]) -> list[Result]:
    """The complete 200 answers."""
    return [r for r in results if r.kind == "ok" and r.status == 200]
