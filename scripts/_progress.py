"""A one-line progress display for long command-line jobs (stderr, no dependencies).

On a terminal it redraws one line (``\\r``) at most 10 times a second; elsewhere (CI logs) it
writes a plain line every ``log_every_s`` seconds. ``close()`` prints the final line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]

_BAR = 24


class Progress:
    """Counts ``done`` items out of ``total`` (``None``: unknown, no bar or ETA)."""

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        stream: TextIO | None = None,
        log_every_s: float = 5.0,
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._every = 0.1 if self._tty else log_every_s

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last_draw >= self._every:
            self._last_draw = now
            self._draw(final=False)

    def close(self) -> None:
        self._draw(final=True)

    def line(self) -> str:
        """The current status text, e.g. ``replay [#####-----] 120/4032 40.0/s eta 1m38s``."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [self.label]
        if self.total:
            filled = min(_BAR, int(_BAR * self.done / self.total))
            parts.append("[" + "#" * filled + "-" * (_BAR - filled) + "]")
            parts.append(f"{self.done}/{self.total}")
        else:
            parts.append(str(self.done))
        parts.append(f"{rate:.1f}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append("eta " + _duration((self.total - self.done) / rate))
        else:
            parts.append("elapsed " + _duration(elapsed))
        return " ".join(parts)

    def _draw(self, *, final: bool) -> None:
        text = self.line()
        if self._tty:
            self._stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self._stream.write(text + "\n")
        self._stream.flush()


def _duration(seconds: float) -> str:
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{sec:02d}s"
    return f"{sec}s"
