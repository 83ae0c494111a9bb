"""A Redis-backed cache: the window serialized into Redis, fetched and deserialized per request.

The writer ``SET``s the pickled DataFrame under one key; every request ``GET``s it and
unpickles it, so each request pays the transfer and the deserialization of the whole window.
:class:`RedisServer` runs a throwaway ``redis-server`` on a loopback port with persistence
off; it needs the binary from the Debian package (``make bench-redis`` installs it).
"""

from __future__ import annotations

import pickle
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pandas as pd
import redis

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
        self._proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> RedisServer:
        for _ in range(3):  # a free port can be taken between the choice and the bind
            self.port = _free_port()
            self._proc = subprocess.Popen(
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
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            if self._wait_ready():
                return self
            self._stop()
        shutil.rmtree(self._dir, ignore_errors=True)
        raise BaselineUnavailableError("redis-server did not start on a loopback port")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                with self.client() as probe:
                    if probe.ping():
                        return True
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        return False

    def _stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
