"""A byte-exact HTTP/1.1 client for tests that send what ordinary clients refuse to send.

:func:`exchange` writes raw bytes to a loopback server and reads one response; it never
fixes up framing, so conflicting headers, broken chunking and odd versions reach the server
exactly as written. :func:`strict_json` parses a body the way a strict client does: NaN and
Infinity are not JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["RawReply", "exchange", "strict_json"]


@dataclass(frozen=True)
class RawReply:
    """One parsed response; ``status`` is 0 when the server sent nothing at all."""

    status: int
    headers: dict[str, str]
    body: bytes
    raw: bytes


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes) -> Any:
    """Parse ``body`` as RFC 8259 JSON (no NaN, no Infinity); raise ValueError otherwise."""
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


def _read_response(sock: socket.socket) -> bytes:
    """Read until the headers and the Content-Length body of the final response are in, or
    the server closes; interim responses (``100 Continue``) are dropped."""
    data = b""
    while True:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0 and data.startswith(b"HTTP/1.1 1"):
            data = data[head_end + 4 :]
            continue
        if head_end >= 0:
            length = 0
            for line in data[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(data) >= head_end + 4 + length:
                return data
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def _parse(raw: bytes) -> RawReply:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return RawReply(0, {}, b"", raw)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(body)))
    return RawReply(status, headers, body[:length], raw)


def exchange(port: int, request: bytes, *, timeout: float = 10.0) -> RawReply:
    """Send ``request`` as is to 127.0.0.1:``port`` and parse the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # The server may answer and close before it has read everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        return _parse(_read_response(sock))
