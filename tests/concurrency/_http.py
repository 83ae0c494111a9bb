"""A byte-exact HTTP/1.1 client and a threaded load driver for the fault scenarios.

``http.client`` hides how a request ended; here every call is classified from the bytes on
the wire, so a truncated response can never pass for a refused connection or the reverse:

* ``ok``: a complete response (status line, headers, and a body whose length matches
  ``Content-Length`` or whose chunked encoding is terminated);
* ``refused``: the connection was refused, or reset during the handshake (nothing was sent);
* ``closed``: the connection was accepted by the kernel but closed or reset before a single
  byte of response came back (the request was never taken by a worker);
* ``truncated``: some bytes came back but not a complete response;
* ``timeout``: nothing complete within the timeout.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Load", "Result", "call", "parse_response", "summarize"]

_CRLF2 = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Result:
    kind: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent_ns: int = 0
    done_ns: int = 0
    error: str = ""
    context: Any = None

    def json(self) -> Any:
        return json.loads(self.body)


def _request_bytes(method: str, path: str, body: bytes | None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


def _dechunk(data: bytes) -> bytes | None:
    """The body of a chunked encoding, or None when it is not complete."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        try:
            size = int(data[pos:end].split(b";")[0], 16)
        except ValueError:
            return None
        pos = end + 2
        if size == 0:
            return bytes(out) if data.find(b"\r\n", pos) >= 0 else None
        if len(data) < pos + size + 2:
            return None
        out += data[pos : pos + size]
        pos += size + 2


def _parse(raw: bytes, sent_ns: int, context: Any) -> Result:
    done = time.monotonic_ns()
    split = raw.find(_CRLF2)
    if split < 0:
        return Result("truncated", body=raw, sent_ns=sent_ns, done_ns=done, context=context)
    lines = raw[:split].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        return Result("truncated", body=raw, sent_ns=sent_ns, done_ns=done, context=context)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, val = line.partition(":")
        headers[name.strip().lower()] = val.strip()
    body: bytes | None = raw[split + 4 :]
    if "content-length" in headers:
        if len(body or b"") != int(headers["content-length"]):
            body = None
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body or b"")
    kind = "ok" if body is not None else "truncated"
    return Result(
        kind,
        status=int(parts[1]),
        headers=headers,
        body=body if body is not None else raw,
        sent_ns=sent_ns,
        done_ns=done,
        context=context,
    )


def parse_response(raw: bytes) -> Result:
    """Classify the bytes a server sent back on one connection (``ok`` or ``truncated``)."""
    return _parse(raw, time.monotonic_ns(), None)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    timeout: float = 10.0,
    context: Any = None,
) -> Result:
    """One request on a new connection to ``127.0.0.1:port``, classified (module docstring)."""
    sent = time.monotonic_ns()
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError) as exc:
        # A reset during the handshake (the listening socket closed under a pending SYN) is a
        # refusal too: nothing was sent.
        return Result("refused", sent_ns=sent, done_ns=time.monotonic_ns(), error=str(exc))
    except OSError as exc:
        return Result("timeout", sent_ns=sent, done_ns=time.monotonic_ns(), error=repr(exc))
    chunks: list[bytes] = []
    error = ""
    with sock:
        try:
            sock.sendall(_request_bytes(method, path, body))
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, BrokenPipeError) as exc:
            error = repr(exc)
        except TimeoutError as exc:
            return Result(
                "timeout",
                body=b"".join(chunks),
                sent_ns=sent,
                done_ns=time.monotonic_ns(),
                error=repr(exc),
            )
    raw = b"".join(chunks)
    if not raw:
        return Result("closed", sent_ns=sent, done_ns=time.monotonic_ns(), error=error)
    return _parse(raw, sent, context)


class Load:
    """``threads`` threads calling one endpoint back to back until :meth:`stop`.

    ``context`` (optional) runs just before each request; its value is kept in
    ``Result.context`` (e.g. the newest generation at send time).
    """

    def __init__(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        threads: int = 6,
        context: Callable[[], Any] | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.port = port
        self._args = (method, path, body)
        self._context = context
        self._timeout = timeout
        self._stop = threading.Event()
        self._results: list[list[Result]] = [[] for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def _run(self, index: int) -> None:
        sink = self._results[index]
        method, path, body = self._args
        while not self._stop.is_set():
            ctx = self._context() if self._context is not None else None
            result = call(self.port, method, path, body, timeout=self._timeout, context=ctx)
            sink.append(result)
            if result.kind == "refused":
                self._stop.wait(0.005)  # nothing listens: do not spin

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def count(self) -> int:
        return sum(len(r) for r in self._results)

    def results(self) -> list[Result]:
        """Everything so far, in send order."""
        merged = [r for sink in self._results for r in list(sink)]
        return sorted(merged, key=lambda r: r.sent_ns)

    def stop(self) -> list[Result]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        return self.results()

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def summarize(results: list[Result]) -> dict[str, int]:
    """Counts by kind, and by status for complete responses (``"ok 200"``...)."""
    counts: dict[str, int] = {}
    for r in results:
        key = f"ok {r.status}" if r.kind == "ok" else r.kind
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
