"""Measurement 6 of ``bench.compare``: the load test's default mix, then cached-only.

Ours (Gunicorn with ``gunicorn.conf.py``'s defaults) serves the bundled sample series, 2,000
rows republished every second (:class:`bench._sample.SampleWindow`), with the model trained on
it, so every mode of ``locustfiles`` applies. Locust then runs the load test as a user would,
``locust -f locustfiles --headless -u 20 -r 20 -t <seconds>s`` (the default mix: cached,
synthetic, real and invalid bodies, every answer checked), and right after it the same command
with ``CachedUser`` alone. Both runs write their summary and Locust's own CPU
(``--summary-json``); the goal compares the mix's throughput with the cached-only run's.
Locust runs on the same two cores as the server: its CPU share says how much of them it took.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import _servers as servers
from bench._proc import Child, child_env
from bench._sample import SampleWindow
from bench._window import LiveWindow

__all__ = ["RUNS", "measure"]

RUNS = ("mix", "cached")
_SEED = "7"  # LOCUST_SEED: the same payloads in every run


def _locust(port: int, users: int, seconds: float, logdir: Path, run: str) -> dict[str, Any]:
    """One headless ``locust -f locustfiles`` run (``run`` = ``mix`` or ``cached``): its
    summary (``locustfiles.RunSummary.as_dict``), exit code and command (``$PORT``: ours)."""
    summary = logdir / f"locustfiles-{run}.json"
    argv = ["-f", "locustfiles", "--headless", "-u", str(users), "-r", str(users)]
    argv += ["-t", f"{max(1, round(seconds))}s", "--host", "http://127.0.0.1:{port}"]
    argv += ["CachedUser"] if run == "cached" else []
    quiet = ["--only-summary", "--summary-json", str(summary)]  # the figures do not change
    child = Child(
        f"locustfiles-{run}",
        [sys.executable, "-m", "locust", *(a.format(port=port) for a in argv), *quiet],
        env=child_env({"LOCUST_SEED": _SEED}),
        log=logdir / f"locustfiles-{run}.log",
    )
    code = child.join(seconds + 180)
    document = json.loads(summary.read_text()) if summary.exists() else None
    # Exit code 1 is a failed gate (a failed request): a figure of the run, not an error.
    if code not in (0, 1) or document is None or document["summary"] is None:
        raise RuntimeError(f"locust -f locustfiles ({run}) exited with {code}: {child.tail()}")
    shown = " ".join(argv).replace("{port}", "$PORT")  # no argument has a space to quote
    command = f"LOCUST_SEED={_SEED} locust {shown}"
    return {"command": command, "exit_code": code, **document["summary"]}


def measure(seconds: float, logdir: Path, workdir: Path, *, users: int = 20) -> dict[str, Any]:
    """The default mix then cached-only, ``users`` users for ``seconds`` each."""
    sample = SampleWindow()
    results: dict[str, Any] = {"users": users, "seconds": seconds, "window_rows": sample.rows}
    window = LiveWindow(
        workdir / "mix-window", sample.artifact, sample.next_table(), tables=sample.next_table
    )
    with window:
        server = servers.ours(window.directory, logdir)
        try:
            server.wait_http("/readyz", timeout=180)
            results["ours_workers"] = len(server.pids()) - 1
            for run in RUNS:
                figures = _locust(server.port, users, seconds, logdir, run)
                results[run] = figures
                print(
                    f"  {run:<6} {users} users: {figures['rps']:>8,.1f} req/s  "
                    f"p50 {figures['p50_ms']:g}  p95 {figures['p95_ms']:g}  "
                    f"p99 {figures['p99_ms']:g} ms  failures {figures['failures']}  "
                    f"Locust CPU {figures['locust_cpu_share']:.0%} "
                    f"({figures['locust_cpu_ms_per_request']:.2f} ms/request)",
                    flush=True,
                )
        finally:
            server.stop()
    mix, cached = results["mix"]["rps"], results["cached"]["rps"]
    results["mix_over_cached"] = round(mix / cached, 3) if cached else None
    return results
