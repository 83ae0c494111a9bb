"""The load generator's own CPU: what the Locust process (all its threads) spent over a
stretch of wall time, as a share of the machine's cores. On a machine shared with the server,
a generator near its ceiling measures itself rather than the server: this says when."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """``cpu_s`` CPU seconds (user + system) over ``wall_s`` seconds, on ``cores`` cores."""

    cpu_s: float
    wall_s: float
    cores: int

    @property
    def share(self) -> float:
        """``cpu_s / (wall_s * cores)``: 1.0 is every core busy for the whole stretch."""
        return self.cpu_s / (self.wall_s * self.cores) if self.wall_s > 0 else 0.0

    def plus_cpu(self, cpu_s: float) -> CpuUsage:
        """The same stretch with ``cpu_s`` more (another process of the same run)."""
        return CpuUsage(self.cpu_s + cpu_s, self.wall_s, self.cores)

    def line(self) -> str:
        return (
            f"Locust CPU {self.cpu_s:.1f} s over {self.wall_s:.1f} s = {self.share:.0%} "
            f"of {self.cores} cores"
        )

    def as_dict(self) -> dict[str, float | int]:
        return {
            "locust_cpu_s": round(self.cpu_s, 3),
            "locust_wall_s": round(self.wall_s, 3),
            "cores": self.cores,
            "locust_cpu_share": round(self.share, 4),
        }


def cores() -> int:
    """The cores this process may run on (its affinity, not the host's count)."""
    return len(os.sched_getaffinity(0))


class CpuMeter:
    """CPU time of this process since :meth:`start` (at creation, then at each call)."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._cpu0 = self._wall0 = 0.0
        self.start()

    def _cpu(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def start(self) -> None:
        self._cpu0, self._wall0 = self._cpu(), time.monotonic()

    def cpu_s(self) -> float:
        """CPU seconds since :meth:`start`."""
        return self._cpu() - self._cpu0

    def read(self) -> CpuUsage:
        """The usage since :meth:`start`."""
        return CpuUsage(self.cpu_s(), time.monotonic() - self._wall0, cores())
