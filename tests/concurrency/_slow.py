"""Slow clients: connections that send a request a few bytes at a time, or stop halfway.

Half of them trickle the request line and headers, half send complete headers announcing a
body and then trickle the body. A connection the server closes is opened again, so the number
of slow connections stays at ``count`` for the whole attack. One thread drives them all.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter

__all__ = ["SlowClients"]

_HEAD = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
_BODY_HEAD = (
    b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 4096\r\n\r\n{"
)


class SlowClients:
    """``count`` slow connections to ``127.0.0.1:port``, one byte each per ``every_s``.

    ``outcomes`` counts how the server ended them: ``"408"`` (a status line with that code),
    ``"closed"`` (closed without an answer), or another status code.
    """

    def __init__(self, port: int, count: int, every_s: float = 0.5) -> None:
        self.port = port
        self.count = count
        self.every_s = every_s
        self.outcomes: Counter[str] = Counter()
        self.opened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def _open(self, index: int) -> socket.socket | None:
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(_HEAD if index % 2 == 0 else _BODY_HEAD)
        except OSError:
            return None
        sock.setblocking(False)
        self.opened += 1
        return sock

    def _tick(self, socks: list[socket.socket | None]) -> None:
        for i, sock in enumerate(socks):
            if sock is None:
                socks[i] = self._open(i)
                continue
            try:
                answer = sock.recv(4096)
            except BlockingIOError:
                answer = None
            except OSError:
                answer = b""
            if answer is not None:  # the server answered or closed: count it, open anew
                parts = answer.split(b" ", 2)
                self.outcomes[parts[1].decode() if len(parts) > 1 else "closed"] += 1
                sock.close()
                socks[i] = self._open(i)
                continue
            try:
                sock.send(b"X" if i % 2 == 0 else b" ")
            except OSError:
                self.outcomes["closed"] += 1
                sock.close()
                socks[i] = self._open(i)

    def _run(self) -> None:
        socks: list[socket.socket | None] = [self._open(i) for i in range(self.count)]
        while not self._stop.wait(self.every_s):
            self._tick(socks)
        for sock in socks:
            if sock is not None:
                sock.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        time.sleep(self.every_s)  # every connection is open before the caller measures
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
