"""wrk runs of the benchmarks: a server's throughput ceiling, measured by a generator in C.

Locust in Python tops out near a thousand requests per second per core, on the same cores as
the server; wrk (Debian package, ``make bench-tools``) spends a small fraction of that CPU per
request, so its figure is the server's. :class:`Wrk` starts one fixed-duration run on loopback
(``bench/_wrk_predict.lua``: ``POST /predict`` with ``{}``, bounded threads and connections)
in a child process (:class:`bench._proc.Child`); :meth:`Wrk.result` waits for it and parses
wrk's report (:func:`parse`, ``--latency`` percentiles). wrk counts statuses, not bodies: a
server answering non-2xx shows as ``non_2xx``, a broken connection as ``socket_errors``.
wrk's own CPU comes from the resource usage of the children this process reaped during the
run (wrk alone: the benchmarks end no other child meanwhile), as ``wrk_cpu_share`` (CPU
seconds / (wall seconds x cores)) and ``wrk_cpu_ms_per_request``, Locust's figures' twins.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import time
from pathlib import Path
from typing import Any

from bench._proc import ROOT, Child

__all__ = ["SCRIPT", "Wrk", "WrkError", "missing", "parse"]

SCRIPT = ROOT / "bench" / "_wrk_predict.lua"
_TIME_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_TOTAL = re.compile(rf"^\s*(\d+) requests in {_TIME}, ([\d.]+)([KMGT]?B) read\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)\s*$", re.M)
_PERCENTILE = re.compile(rf"^\s+(\d+(?:\.\d+)?)%\s+{_TIME}\s*$", re.M)
_LATENCY = re.compile(rf"^\s+Latency\s+{_TIME}\s+{_TIME}\s+{_TIME}\s+", re.M)
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class WrkError(RuntimeError):
    """wrk did not run, or its report lacks a figure this module needs."""


def missing() -> str | None:
    """Why wrk cannot run here (None when it can)."""
    if shutil.which("wrk"):
        return None
    return "wrk is not installed (`make bench-tools` installs Debian's wrk package as root)"


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _ms(value: str, unit: str) -> float:
    return round(float(value) * _TIME_MS[unit], 3)


def parse(report: str) -> dict[str, Any]:
    """The figures of one wrk report printed with ``--latency``: ``requests``, ``seconds``,
    ``rps``, ``avg_ms``/``max_ms`` (thread stats), ``p50_ms``/``p75_ms``/``p90_ms``/``p99_ms``
    (its latency distribution; None when nothing completed), ``socket_errors`` (all kinds
    summed, per kind under ``socket_errors_by_kind``) and ``non_2xx``. Times in any of wrk's
    units (us, ms, s, m, h) come out in milliseconds. :class:`WrkError` names a missing figure."""
    total, rps = _TOTAL.search(report), _RPS.search(report)
    if total is None or rps is None:
        raise WrkError(f"no request count or Requests/sec in wrk's report: {report[-800:]!r}")
    requests = int(total[1])
    out: dict[str, Any] = {
        "requests": requests,
        "seconds": round(_ms(total[2], total[3]) / 1000, 3),
        "rps": round(float(rps[1]), 1),
    }
    out.update(dict.fromkeys(("avg_ms", "max_ms", "p50_ms", "p75_ms", "p90_ms", "p99_ms")))
    if requests:
        latency = _LATENCY.search(report)
        found = {m[1]: _ms(m[2], m[3]) for m in _PERCENTILE.finditer(report)}
        absent = [p for p in ("50", "75", "90", "99") if p not in found]
        if latency is None or absent:
            raise WrkError(
                f"wrk's report lacks its latency (run it with --latency): {report[-800:]!r}"
            )
        out["avg_ms"], out["max_ms"] = _ms(latency[1], latency[2]), _ms(latency[5], latency[6])
        out.update({f"p{p}_ms": found[p] for p in ("50", "75", "90", "99")})
    socket = _SOCKET.search(report)
    counts = [int(n) for n in socket.groups()] if socket else [0, 0, 0, 0]
    kinds = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    out["socket_errors"] = sum(kinds.values())
    out["socket_errors_by_kind"] = kinds
    non_2xx = _NON_2XX.search(report)
    out["non_2xx"] = int(non_2xx[1]) if non_2xx else 0
    return out


class Wrk:
    """One run against ``http://127.0.0.1:port/predict``: ``connections`` kept open by
    ``threads`` threads (at most one per connection) for ``seconds``; the report goes to
    ``<workdir>/wrk-<tag>.log``."""

    def __init__(
        self,
        port: int,
        connections: int,
        seconds: float,
        workdir: Path,
        tag: str,
        *,
        threads: int = 1,
    ) -> None:
        if why := missing():
            raise WrkError(why)
        self.connections = connections
        self.threads = max(1, min(threads, connections))
        self._log = workdir / f"wrk-{tag}.log"
        self._log.unlink(missing_ok=True)
        self._started = time.monotonic(), _children_cpu_s()
        cmd = ["wrk", "-t", str(self.threads), "-c", str(connections)]
        cmd += ["-d", f"{max(1, round(seconds))}s", "--timeout", "30s", "--latency"]
        cmd += ["-s", str(SCRIPT), f"http://127.0.0.1:{port}/predict"]
        self._child = Child(f"wrk-{tag}", cmd, log=self._log)

    def result(self, timeout: float = 300.0) -> dict[str, Any]:
        """Wait for the run; its figures (:func:`parse`) with the connections and threads."""
        code = self._child.join(timeout)
        wall_s = time.monotonic() - self._started[0]
        cpu_s = _children_cpu_s() - self._started[1]
        report = self._log.read_text(errors="replace") if self._log.exists() else ""
        if code != 0:
            raise WrkError(f"wrk exited with {code}: {report[-800:]}")
        figures = parse(report)
        requests, cores = figures["requests"], len(os.sched_getaffinity(0))
        return {
            "connections": self.connections,
            "threads": self.threads,
            **figures,
            "wrk_cpu_s": round(cpu_s, 3),
            "wrk_cpu_share": round(cpu_s / (wall_s * cores), 4),
            "wrk_cpu_ms_per_request": round(cpu_s * 1000 / requests, 4) if requests else None,
        }

    def stop(self) -> None:
        self._child.stop()
