"""Headless Locust runs of the benchmarks (FastHttpUser of ``_locustfile.py``, no think time).

:class:`Locust` starts one run in a child process (:class:`bench._proc.Child`);
:meth:`Locust.result` waits for it and reads its aggregated figures from the CSV Locust
writes, with Locust's own CPU over the same stretch: ``locust_cpu_share`` (CPU seconds /
(wall seconds x cores); near ``1 / cores`` the figures are the generator's ceiling, not the
server's) and ``locust_cpu_ms_per_request`` (what one request costs the generator: a core
gives it at most ``1000 /`` that many requests per second, less on a machine where other
processes take their share of the cores); :func:`medians` merges the figures of repeated
runs.

A run that completed no request (a server that answered nothing within the run: the seed
design at 10 M rows can take longer than a phase for one request) is a result too: its
``requests`` is 0, its times are None and ``no_answer_within_s`` holds the run's length
(None for a run that had answers), so that a report shows "no answer within N s" and the
benchmark goes on. :func:`no_answer` words it.
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench._proc import ROOT, Child

__all__ = ["COUNTS", "Locust", "medians", "no_answer"]

LOCUSTFILE = ROOT / "bench" / "_locustfile.py"
# Figures summed over repeated runs; the others are medians.
COUNTS = ("requests", "failures")


class Locust:
    """One run against 127.0.0.1:``port``, ``users`` spawned within a second; the statistics
    are reset once all of them run, so the figures cover the steady ``seconds`` only.
    ``target`` and ``check_generation``: the options of ``_locustfile.py``."""

    def __init__(
        self,
        port: int,
        users: int,
        seconds: float,
        workdir: Path,
        tag: str,
        *,
        target: str = "predict",
        check_generation: bool = False,
    ) -> None:
        self.users = users
        self.seconds = max(1, round(seconds))
        self._prefix = workdir / f"locust-{tag}"
        self._cpu_json = workdir / f"locust-{tag}-cpu.json"
        self._running = workdir / f"locust-{tag}-running"
        self._running.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        cmd += ["--only-summary", "--reset-stats", "--skip-log-setup", "--loglevel", "ERROR"]
        cmd += ["-u", str(users), "-r", str(users), "-t", f"{self.seconds}s"]
        cmd += ["--host", f"http://127.0.0.1:{port}", "--csv", str(self._prefix)]
        cmd += ["--exit-code-on-error", "0", "--target", target]
        cmd += ["--cpu-json", str(self._cpu_json), "--running-file", str(self._running)]
        cmd += ["--check-generation"] if check_generation else []
        self._child = Child(f"locust-{tag}", cmd, log=workdir / f"locust-{tag}.log")

    def wait_running(self, timeout: float = 120.0) -> bool:
        """Wait until all the users run (the locustfile then creates its running file).
        False when Locust exited first or ``timeout`` passed: on a loaded machine starting
        Locust alone can take many seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._child.proc.poll() is None:
            if self._running.exists():
                return True
            time.sleep(0.05)
        return self._running.exists()

    def result(self, timeout: float = 300.0) -> dict[str, Any]:
        """Wait for the run; its aggregated figures (req/s, times in ms, failures) and
        Locust's CPU (``locust_cpu_s``, ``locust_cpu_share``)."""
        code = self._child.join(timeout)
        stats = self._prefix.with_name(self._prefix.name + "_stats.csv")
        if code != 0 or not stats.exists():
            raise RuntimeError(f"locust exited with {code}: {self._child.tail()}")
        with stats.open() as handle:
            row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
        requests = int(row["Request Count"])
        if not self._cpu_json.exists():
            raise RuntimeError(f"locust wrote no CPU figures: {self._child.tail()}")
        cpu = json.loads(self._cpu_json.read_text())
        # Locust writes "N/A" percentiles for a run that completed nothing.
        times = ("avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
        columns = ("Average Response Time", "50%", "95%", "99%", "Max Response Time")
        return {
            "users": self.users,
            "requests": requests,
            "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1) if requests else 0.0,
            **{
                key: round(float(row[column]), 2) if requests else None
                for key, column in zip(times, columns, strict=True)
            },
            "no_answer_within_s": None if requests else self.seconds,
            "locust_cpu_s": cpu["locust_cpu_s"],
            "locust_cpu_share": cpu["locust_cpu_share"],
            "locust_cpu_ms_per_request": (
                round(cpu["locust_cpu_s"] * 1000 / requests, 3) if requests else None
            ),
        }

    def stop(self) -> None:
        self._child.stop()


def medians(runs: list[dict[str, Any]], counts: tuple[str, ...] = COUNTS) -> dict[str, Any]:
    """One figure per key over repeated runs: ``counts`` summed, other numbers the median
    (rounded to 0.01) of the runs that measured them (None: none did), anything else (names)
    from the first run."""
    out: dict[str, Any] = {}
    for key, first in runs[0].items():
        values = [run[key] for run in runs]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if key in counts:
            out[key] = sum(values)
        elif numbers and len(numbers) + values.count(None) == len(values):
            out[key] = round(statistics.median(numbers), 2)
        else:
            out[key] = first
    return out


def no_answer(run: dict[str, Any]) -> str | None:
    """ "no answer within N s" for a run (or the medians of runs) that completed no request,
    else None."""
    if run.get("requests"):
        return None
    seconds = run.get("no_answer_within_s")
    return "no answer" if seconds is None else f"no answer within {seconds:g} s"
