"""Load for ``bench.compare``: Locust headless (FastHttpUser, ``_locustfile.py``) and a
short warm-up."""

from __future__ import annotations

import csv
import http.client
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._proc import ROOT

__all__ = ["Locust", "warm_up"]

LOCUSTFILE = ROOT / "bench" / "_locustfile.py"


def warm_up(port: int, requests: int = 20) -> None:
    """A few sequential ``POST /predict`` so first-request costs stay out of the figures."""
    for _ in range(requests):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request(
                "POST", "/predict", body=b"{}", headers={"Content-Type": "application/json"}
            )
            conn.getresponse().read()
        finally:
            conn.close()


class Locust:
    """One headless Locust run against 127.0.0.1:``port``; :meth:`result` waits for it.

    ``users`` start within a second; the statistics are reset once all of them run, so the
    figures cover the steady ``seconds`` only.
    """

    def __init__(self, port: int, users: int, seconds: float, workdir: Path, tag: str) -> None:
        self.users = users
        self._prefix = workdir / f"locust-{tag}"
        self._log = workdir / f"locust-{tag}.log"
        cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
        cmd += ["--only-summary", "--reset-stats", "--skip-log-setup", "--loglevel", "ERROR"]
        cmd += ["-u", str(users), "-r", str(users), "-t", f"{max(1, round(seconds))}s"]
        cmd += ["--host", f"http://127.0.0.1:{port}", "--csv", str(self._prefix)]
        cmd += ["--exit-code-on-error", "0"]
        self.started = time.monotonic()
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def result(self, timeout: float = 300.0) -> dict[str, Any]:
        """Wait for the run; its aggregated figures (req/s, percentiles in ms, failures)."""
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
            raise
        stats = self._prefix.with_name(self._prefix.name + "_stats.csv")
        if code != 0 or not stats.exists():
            tail = self._log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"locust exited with {code}: {tail}")
        with stats.open() as handle:
            row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
        requests = int(row["Request Count"])
        if not requests:
            raise RuntimeError(f"locust completed no request in {self._prefix.name}")
        return {
            "users": self.users,
            "requests": requests,
            "failures": int(row["Failure Count"]),
            "rps": round(float(row["Requests/s"]), 1),
            "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"]),
            "max_ms": float(row["Max Response Time"]),
        }

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(30)
