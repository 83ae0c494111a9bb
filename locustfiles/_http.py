"""A small HTTP client for requests that must not count in Locust's statistics: the preflight
checks and the ingest user's ``/cache`` polling.

Uses ``http.client``, which is cooperative under Locust's gevent patching. One keep-alive
connection per client; a failed connection is reopened on the next call. Not thread-safe:
one client per user (greenlet).
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Reply", "ServiceClient"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class ServiceClient:
    """Requests against ``base_url`` (``http://host:port[/prefix]``)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"host must be an http(s) URL, got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._timeout)
        return self._conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request; raises OSError (or ``http.client.HTTPException``) when the
        service does not answer."""
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
                return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
            except (OSError, http.client.HTTPException):
                self.close()
                # A kept-alive connection may have been closed by the server: retry once.
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def post_json(self, path: str, body: bytes, content_type: str = "application/json") -> Reply:
        return self.request("POST", path, body, {"Content-Type": content_type})

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
