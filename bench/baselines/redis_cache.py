"""A Redis-backed cache: the window serialized into Redis, fetched and deserialized per request.

The writer ``SET``s the pickled DataFrame under one key; every request ``GET``s it and
unpickles it, so each request pays the transfer and the deserialization of the whole window.
:class:`RedisServer` runs a throwaway ``redis-server`` on a loopback port with persistence
off; it needs the binary from the Debian package (``make bench-redis`` installs it).
"""

from __future__ import annotations

import contextlib
import pickle
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import redis

from bench._proc import Child, free_ports
from bench.baselines.errors import BaselineUnavailableError

__all__ = ["INSTALL_HINT", "RedisServer", "RedisWindowCache", "find_redis_server"]

INSTALL_HINT = (
    "redis-server is not installed; `make bench-redis` installs it from the Debian package "
    "(apt-get install redis-server, as root)"
)


def find_redis_server() -> str | None:
    """The path of ``redis-server``, or None when it is not on PATH."""
    return shutil.which("redis-server")


class RedisServer:
    """A ``redis-server`` child bound to 127.0.0.1 on a free port, no persistence.

    Use as a context manager; leaving it stops the server (SIGTERM, then SIGKILL) and removes
    its directory. Raises :class:`BaselineUnavailableError` when the binary is missing.
    """

    def __init__(self) -> None:
        binary = find_redis_server()
        if binary is None:
            raise BaselineUnavailableError(INSTALL_HINT)
        self._binary = binary
        self._dir = Path(tempfile.mkdtemp(prefix="bench-redis-"))
        self._child: Child | None = None
        self.port = 0

    def __enter__(self) -> RedisServer:
        for _ in range(3):  # a free port can be taken between the choice and the bind
            (self.port,) = free_ports(1)
            self._child = Child(
                "redis-server",
                [
                    self._binary,
                    "--bind", "127.0.0.1",
                    "--port", str(self.port),
                    "--save", "",
                    "--appendonly", "no",
                    "--protected-mode", "yes",
                    "--dir", str(self._dir),
                    "--loglevel", "warning",
                ],
            )  # fmt: skip
            with contextlib.suppress(RuntimeError, TimeoutError):
                self._child.wait_for(self._ping, timeout=10, what="answering PING", interval=0.05)
                return self
            self._child.stop(grace=10)
        shutil.rmtree(self._dir, ignore_errors=True)
        raise BaselineUnavailableError("redis-server did not start on a loopback port")

    def __exit__(self, *exc: object) -> None:
        if self._child is not None:
            self._child.stop(grace=10)
        shutil.rmtree(self._dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def _ping(self) -> bool:
        try:
            with self.client() as probe:
                return bool(probe.ping())
        except redis.exceptions.ConnectionError:
            return False


class RedisWindowCache:
    """The window under ``key``: :meth:`publish` by the writer, :meth:`latest` per request."""

    def __init__(self, client: redis.Redis, key: str = "window") -> None:
        self._client = client
        self._key = key

    def publish(self, frame: pd.DataFrame) -> int:
        """Store ``frame``; returns the serialized size in bytes."""
        blob = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
        self._client.set(self._key, blob)
        return len(blob)

    def latest(self) -> pd.DataFrame:
        """GET and unpickle the whole window (what every request of this design pays)."""
        blob = self._client.get(self._key)
        if not isinstance(blob, bytes):
            raise LookupError(f"no window under {self._key!r}")
        frame: pd.DataFrame = pickle.loads(blob)
        return frame
